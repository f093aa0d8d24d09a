import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// What a test file server was asked: path, Range header and the status it answered.
final class RequestLog: Sendable {
    struct Entry: Sendable, Hashable {
        var path: String
        var range: String?
        var status: Int
    }

    private let entries = Mutex<[Entry]>([])

    func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }
    var all: [Entry] { entries.withLock { $0 } }
}

struct RecordingMiddleware<Context: RequestContext>: RouterMiddleware {
    let log: RequestLog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response
    {
        let range = request.headers[.range]
        do {
            let response = try await next(request, context)
            log.append(.init(path: request.uri.path, range: range, status: response.status.code))
            return response
        } catch let error as any HTTPResponseError {
            log.append(.init(path: request.uri.path, range: range, status: error.status.code))
            throw error
        }
    }
}

/// Hummingbird's FileMiddleware (which answers Range requests with 206) on 127.0.0.1, for the
/// duration of `body`.
enum RangeFileServer {
    static func serving<T: Sendable>(
        _ root: String, _ body: @Sendable (_ baseURL: String, _ log: RequestLog) async throws -> T
    ) async throws -> T {
        let log = RequestLog()
        let router = Router()
        router.add(middleware: RecordingMiddleware(log: log))
        router.add(middleware: FileMiddleware(root, searchForIndexHtml: false))
        // `/moved/<path>` redirects to `/<path>`, as mirrors and release sites do.
        router.get("moved/**") { _, context -> Response in
            Response(status: .found, headers: [.location: "/" + context.parameters.getCatchAll().joined(separator: "/")])
        }
        // `/stall/<path>` sends the first half of the file, then nothing: a download to interrupt.
        router.get("stall/**") { _, context -> Response in
            let bytes = try Data(
                contentsOf: URL(fileURLWithPath: root + "/" + context.parameters.getCatchAll().joined(separator: "/")))
            return Response(
                status: .ok, headers: [.contentLength: "\(bytes.count)"],
                body: ResponseBody(contentLength: bytes.count) { writer in
                    try await writer.write(ByteBuffer(bytes: bytes.prefix(bytes.count / 2)))
                    try await Task.sleep(for: .seconds(20))
                })
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "test-file-server")
        logger.logLevel = .critical  // cancelling the server at the end logs errors that are expected
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw CancellationError() }
            return try await body("http://127.0.0.1:\(port)", log)
        }
    }
}
