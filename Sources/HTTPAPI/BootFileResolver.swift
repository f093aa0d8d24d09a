import HTTPTypes
import ProvisioningModel

#if canImport(Glibc)
    import Glibc
#endif

/// An open boot file; whoever receives it owns the descriptor and closes it.
struct OpenedBootFile: Sendable {
    var descriptor: CInt
    var metadata: BootFileMetadata
}

/// A boot-file request refused before any byte is sent: 403 or 404 in the API's error shape.
struct BootFileRefusal: Error, Equatable {
    var status: HTTPResponse.Status
    var code: String
    var message: String

    static func notFound(_ path: BootFilePath) -> BootFileRefusal {
        BootFileRefusal(status: .notFound, code: "not_found", message: "no boot file \(path)")
    }
}

/// Finds a boot file in the roots, in order, and opens it. Blocking: call it on a thread pool.
/// A root that lacks the file passes to the next; a file that exists but leads outside its root
/// (through a symlink, unless the root allows that) is refused, not looked for further.
enum BootFileResolver {
    static func open(_ path: BootFilePath, roots: [BootFileRoot]) throws(BootFileRefusal) -> OpenedBootFile {
        for root in roots {
            guard let realRoot = realPath(root.path) else { continue }
            guard let real = realPath(root.path + "/" + path.description) else {
                switch errno {
                case ENOENT, ENOTDIR: continue
                case ELOOP:
                    throw BootFileRefusal(status: .forbidden, code: "access_violation", message: "\(path): too many symlinks")
                default:
                    throw BootFileRefusal(status: .forbidden, code: "access_violation", message: "\(path): permission denied")
                }
            }
            guard root.symlinksMayLeaveRoot || real.hasPrefix(realRoot.hasSuffix("/") ? realRoot : realRoot + "/") else {
                throw BootFileRefusal(
                    status: .forbidden, code: "access_violation", message: "\(path) leads outside the boot-file directory")
            }
            // O_NOFOLLOW: the resolved path has no symlinks; one swapped in since is refused.
            // O_NONBLOCK: opening a FIFO must not block the thread (it is refused below).
            let descriptor = Glibc.open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            guard descriptor >= 0 else {
                switch errno {
                case ENOENT: continue
                case EACCES, ELOOP:
                    throw BootFileRefusal(status: .forbidden, code: "access_violation", message: "\(path): permission denied")
                default: throw .notFound(path)
                }
            }
            var status = stat()
            guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
                _ = Glibc.close(descriptor)
                throw .notFound(path)
            }
            return OpenedBootFile(
                descriptor: descriptor,
                metadata: BootFileMetadata(
                    size: Int(status.st_size), modificationSeconds: Int(status.st_mtim.tv_sec),
                    modificationNanoseconds: Int(status.st_mtim.tv_nsec)))
        }
        throw .notFound(path)
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
