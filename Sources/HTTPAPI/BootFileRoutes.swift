#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HTTPTypes
import Hummingbird
import ProvisioningModel

/// `/files/<path>` on the boot plane: loaders, kernels, initrds and images from the boot-file
/// directories, in order (the site's first, then the packaged loaders). GET and HEAD, byte ranges,
/// ETag and Last-Modified revalidation come from Hummingbird's `FileMiddleware`, which streams files
/// in chunks rather than holding them in memory. This middleware runs first and keeps requests inside
/// the roots: the same path rules as TFTP (``BootFilePath``), and no symlink that leads outside.
struct BootFileGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    static var prefix: String { "/files/" }
    let roots: [BootFileRoot]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix(Self.prefix) else { return try await next(request, context) }
        let requested = String(request.uri.path.dropFirst(Self.prefix.count))
        let path: BootFilePath
        do {
            path = try BootFilePath(validating: requested.removingPercentEncoding ?? requested)
        } catch {
            throw Self.error(for: error, requested: requested)
        }
        for root in roots {
            let candidate = root.path + "/" + path.description
            var status = stat()
            guard stat(candidate, &status) == 0 else { continue }
            guard let real = Self.realPath(candidate), let realRoot = Self.realPath(root.path),
                root.symlinksMayLeaveRoot || real.hasPrefix(realRoot + "/")
            else {
                throw APIError(.forbidden, code: "access_violation", message: "\(path) leads outside the boot-file directory")
            }
            guard status.st_mode & S_IFMT == S_IFREG else { throw APIError(.notFound, code: "not_found", message: "no boot file \(path)") }
            if let range = request.headers[.range], Self.startsPastEnd(range, size: Int(status.st_size)) {
                return Response(status: .rangeNotSatisfiable, headers: [.contentRange: "bytes */\(status.st_size)"])
            }
            return try await next(request, context)
        }
        throw APIError(.notFound, code: "not_found", message: "no boot file \(path)")
    }

    /// `bytes=N-…` with N at or past the end: RFC 9110 says 416, which the file middleware does not.
    static func startsPastEnd(_ header: String, size: Int) -> Bool {
        guard header.hasPrefix("bytes="), let dash = header.firstIndex(of: "-") else { return false }
        guard let start = Int(header[header.index(header.startIndex, offsetBy: 6)..<dash]) else { return false }
        return start >= size
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func error(for error: BootFileOpenError, requested: String) -> APIError {
        switch error {
        case .accessViolation(_, let reason): APIError(.forbidden, code: "access_violation", message: "\(requested): \(reason)")
        default: APIError(.notFound, code: "not_found", message: "no boot file \(requested)")
        }
    }
}
