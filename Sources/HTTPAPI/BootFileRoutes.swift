import Dispatch
import HTTPTypes
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import ProvisioningModel

#if canImport(Glibc)
    import Glibc
#endif

/// `/files/<path>` on the boot plane: loaders, kernels, initrds and multi-GiB images from the boot-file
/// directories, in order (the site's first, then the packaged loaders). GET and HEAD are answered in
/// the channel pipeline, below Hummingbird, so the file goes to the socket with sendfile(2) (a NIO
/// `FileRegion`) instead of being copied through buffers: Hummingbird's response bodies are ByteBuffers.
/// What to answer is ``BootFileResponsePlan``'s (ranges, revalidation); which file is
/// ``BootFileResolver``'s (the TFTP path rules, no symlink out of a root). Every other request passes
/// through untouched.
public struct BootFileService: Sendable {
    let roots: [BootFileRoot]
    let threadPool: NIOThreadPool
    let logger: Logger

    public init(roots: [BootFileRoot], threadPool: NIOThreadPool = .singleton, logger: Logger) {
        self.roots = roots
        self.threadPool = threadPool
        self.logger = logger
    }

    /// The route label in the request metrics (the router's own routes are labelled the same way).
    static let route = "/files/**"
}

extension BootPlane {
    /// Plain HTTP/1 with `/files/` served by sendfile; without boot-file roots, Hummingbird's plain HTTP/1.
    public static func server(_ environment: BootPlaneEnvironment) -> HTTPServerBuilder {
        guard !environment.bootFileRoots.isEmpty else { return .http1() }
        let files = BootFileService(roots: environment.bootFileRoots, logger: environment.logger)
        return HTTPServerBuilder { responder in BootPlaneHTTP1Channel(http1: HTTP1Channel(responder: responder), files: files) }
    }
}

/// Hummingbird's HTTP/1 channel with the boot-file handler between the HTTP/1 codec and Hummingbird's
/// own handlers, where response bodies may still be file regions.
struct BootPlaneHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let http1: HTTP1Channel
    let files: BootFileService

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let files = self.files
        return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            // Hummingbird reads pipelined requests from its stream in order; the file handler answers
            // beside it, so requests are handed up one at a time, each after the previous response.
            let pipelining = HTTPServerPipelineHandler()
            try pipeline.addHandler(pipelining, position: .after(decoder))
            try pipeline.addHandler(BootFileHandler(files), position: .after(pipelining))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

/// Answers GET and HEAD of `/files/…` itself and passes every other request on. It sees one request
/// at a time (``HTTPServerPipelineHandler`` below it holds the next until this response has ended).
final class BootFileHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let files: BootFileService
    /// The request being read is one this handler answers: its body and end go no further.
    private var answering = false

    init(_ files: BootFileService) { self.files = files }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if head.method == .GET || head.method == .HEAD, let target = BootFileTarget(requestTarget: head.uri) {
                answering = true
                answer(head, target, context: context)
            } else {
                answering = false
                context.fireChannelRead(data)
            }
        case .body:
            if !answering { context.fireChannelRead(data) }
        case .end:
            if answering { answering = false } else { context.fireChannelRead(data) }
        }
    }

    private func answer(_ head: HTTPRequestHead, _ target: BootFileTarget, context: ChannelHandlerContext) {
        let started = DispatchTime.now().uptimeNanoseconds
        let path: BootFilePath
        switch target {
        case .refused(let status, let code, let message):
            // On the next tick: answering inside the previous response's end (where the pipelining handler
            // hands over the next request) would recurse once per pipelined request.
            context.eventLoop.assumeIsolated().execute {
                self.refuse(
                    head, BootFileRefusal(status: status, code: code, message: message), started: started, context: context)
            }
            return
        case .file(let checked):
            path = checked
        }
        let roots = files.roots
        // realpath, open and fstat can block on a slow disk: never on the event loop.
        files.threadPool.runIfActive(eventLoop: context.eventLoop) {
            try BootFileResolver.open(path, roots: roots)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let file):
                self.send(file, path: path, head, started: started, context: context)
            case .failure(let refusal as BootFileRefusal):
                self.refuse(head, refusal, started: started, context: context)
            case .failure(let error):
                self.files.logger.error("boot file lookup failed", metadata: ["path": "\(path)", "error": "\(error)"])
                self.refuse(
                    head,
                    BootFileRefusal(
                        status: .internalServerError, code: "internal_error", message: "internal error; see the server log"),
                    started: started, context: context)
            }
        }
    }

    private func send(
        _ file: OpenedBootFile, path: BootFilePath, _ head: HTTPRequestHead, started: UInt64, context: ChannelHandlerContext
    ) {
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: file.descriptor)
        var conditions = BootFileRequestConditions(isHead: head.method == .HEAD)
        conditions.ifNoneMatch = head.headers["If-None-Match"]
        conditions.ifModifiedSince = head.headers.first(name: "If-Modified-Since")
        conditions.range = head.headers.first(name: "Range")
        conditions.ifRange = head.headers.first(name: "If-Range")
        let plan = BootFileResponsePlan(path: path, file: file.metadata, conditions: conditions)

        context.write(wrapOutboundOut(.head(responseHead(head, status: plan.status, fields: plan.headers))), promise: nil)
        if let bytes = plan.body, !bytes.isEmpty {
            // The kernel copies straight from the page cache to the socket, as the socket drains.
            let region = FileRegion(fileHandle: handle, readerIndex: bytes.lowerBound, endIndex: bytes.upperBound)
            context.write(wrapOutboundOut(.body(.fileRegion(region))), promise: nil)
        }
        // Writes complete in order: when the end has been written (or failed, the client gone), the region is done with.
        finish(head, status: plan.status, started: started, context: context) {
            try? handle.close()
        }
    }

    private func refuse(_ head: HTTPRequestHead, _ refusal: BootFileRefusal, started: UInt64, context: ChannelHandlerContext) {
        let error = BootFileResponsePlan.error(status: refusal.status, code: refusal.code, message: refusal.message)
        context.write(wrapOutboundOut(.head(responseHead(head, status: refusal.status, fields: error.headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: error.body)))), promise: nil)
        finish(head, status: refusal.status, started: started, context: context) {}
    }

    private func finish(
        _ head: HTTPRequestHead, status: HTTPResponse.Status, started: UInt64, context: ChannelHandlerContext,
        then release: @escaping () -> Void
    ) {
        let keepAlive = head.isKeepAlive
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            release()
            self.record(head, status: status, started: started, completed: (try? result.get()) != nil)
            if !keepAlive { context.close(promise: nil) }
        }
    }

    private func responseHead(_ request: HTTPRequestHead, status: HTTPResponse.Status, fields: HTTPFields) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 3)
        for field in fields { headers.add(name: field.name.canonicalName, value: field.value) }
        headers.add(name: "Date", value: HTTPDate.format(epochSeconds: Int(time(nil))))
        headers.add(name: "Server", value: "anvil")
        if !request.isKeepAlive {
            headers.add(name: "Connection", value: "close")
        } else if request.version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        return HTTPResponseHead(version: request.version, status: .init(statusCode: status.code), headers: headers)
    }

    /// The same request metrics as the router's (MetricsMiddleware), under one route label.
    private func record(_ head: HTTPRequestHead, status: HTTPResponse.Status, started: UInt64, completed: Bool) {
        let dimensions = [
            ("http.route", BootFileService.route), ("http.request.method", head.method.rawValue),
            ("http.response.status_code", String(status.code)),
        ]
        Counter(label: "hb.requests", dimensions: dimensions).increment()
        Metrics.Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
        if status.code >= 400 {
            Counter(
                label: "hb.request.errors",
                dimensions: [
                    ("http.route", BootFileService.route), ("http.request.method", head.method.rawValue),
                    ("error.type", String(status.code)),
                ]
            ).increment()
        }
        files.logger.debug(
            "boot file request",
            metadata: [
                "method": "\(head.method.rawValue)", "target": "\(head.uri)", "status": "\(status.code)",
                "completed": "\(completed)",
            ])
    }
}
