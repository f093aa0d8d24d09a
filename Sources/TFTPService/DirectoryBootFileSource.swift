#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOPosix
import ProvisioningModel
import Synchronization

/// Boot files from a directory (loaders such as `undionly.kpxe`, `ipxe.efi`). A path is resolved
/// with every symlink followed and must still lie inside the root; anything else is an access
/// violation, unless the root is a system directory whose symlinks are trusted (Debian's
/// `/usr/lib/ipxe/ipxe.efi` points to `/boot/ipxe.efi`). Small files are kept in a shared LRU cache (keyed by device, inode, size and
/// modification time, so a replaced file is never served stale); larger ones are read on demand.
/// All file-system calls run on a thread pool, never on the caller's thread.
public struct DirectoryBootFileSource: BootFileSource {
    public let root: String
    /// Whether a symlink may lead outside the root: only for directories the OS package manager owns.
    public let symlinksMayLeaveRoot: Bool
    private let cache: HotBootFileCache
    private let hotFileSizeLimit: Int
    private let threadPool: NIOThreadPool

    /// - Parameters:
    ///   - hotFileSizeLimit: files up to this size are served from memory.
    ///   - hotCacheCapacity: total bytes the cache holds; least recently used files leave first.
    public init(
        root: String, symlinksMayLeaveRoot: Bool = false, hotFileSizeLimit: Int = 8 << 20, hotCacheCapacity: Int = 64 << 20,
        threadPool: NIOThreadPool = .singleton
    ) {
        self.root = root
        self.symlinksMayLeaveRoot = symlinksMayLeaveRoot
        self.hotFileSizeLimit = min(hotFileSizeLimit, hotCacheCapacity)
        self.cache = HotBootFileCache(capacity: hotCacheCapacity)
        self.threadPool = threadPool
    }

    public func open(_ request: BootFileRequest) async throws(BootFileOpenError) -> BootFile {
        let path = request.path
        let opened: OpenedFile
        do {
            let root = self.root
            opened = try await threadPool.runIfActive { try OpenedFile.open(path, under: root, symlinksMayLeaveRoot: symlinksMayLeaveRoot) }
        } catch let error as BootFileOpenError {
            throw error
        } catch {
            throw .unreadable(path: path.description, cause: "\(error)")
        }
        guard opened.identity.size <= hotFileSizeLimit else {
            return BootFile(path: path, size: opened.identity.size, reader: FileDescriptorReader(opened, threadPool: threadPool))
        }
        do {
            let threadPool = self.threadPool
            let bytes = try await cache.bytes(for: opened.identity) {
                try await threadPool.runIfActive { try opened.readAll() }
            }
            opened.close()
            return BootFile(path: path, bytes: bytes)
        } catch {
            opened.close()
            throw .unreadable(path: path.description, cause: "\(error)")
        }
    }

    /// Files currently held in memory, and their total size (for tests and diagnostics).
    public func cachedFiles() async -> (count: Int, bytes: Int) { await cache.usage }
}

/// What identifies a file's content well enough for caching.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int
    var modificationSeconds: Int
    var modificationNanoseconds: Int
}

/// An open, checked regular file inside the root.
final class OpenedFile: Sendable {
    let descriptor: CInt
    let identity: FileIdentity
    private let closed = Atomic<Bool>(false)

    private init(descriptor: CInt, identity: FileIdentity) {
        self.descriptor = descriptor
        self.identity = identity
    }

    deinit { close() }

    func close() {
        if !closed.exchange(true, ordering: .relaxed) { _ = Glibc.close(descriptor) }
    }

    /// Blocking: call on a thread pool.
    static func open(_ path: BootFilePath, under root: String, symlinksMayLeaveRoot: Bool = false) throws(BootFileOpenError) -> OpenedFile {
        let text = path.description
        guard let resolvedRoot = realPath(root) else {
            throw .unreadable(path: text, cause: "boot-file root \(root) is not accessible (errno \(errno))")
        }
        let candidate = resolvedRoot + (resolvedRoot.hasSuffix("/") ? "" : "/") + text
        guard let resolved = realPath(candidate) else {
            switch errno {
            case ENOENT, ENOTDIR: throw .notFound(path: text)
            case ELOOP: throw .accessViolation(path: text, reason: "too many symlinks")
            case EACCES: throw .accessViolation(path: text, reason: "permission denied")
            default: throw .unreadable(path: text, cause: "cannot resolve (errno \(errno))")
            }
        }
        let prefix = resolvedRoot.hasSuffix("/") ? resolvedRoot : resolvedRoot + "/"
        guard symlinksMayLeaveRoot || resolved.hasPrefix(prefix) else {
            throw .accessViolation(path: text, reason: "leads outside the boot-file root")
        }
        // O_NOFOLLOW: the resolved path has no symlinks; one swapped in since then is refused.
        // O_NONBLOCK: a FIFO must not block the opening thread (it is refused below anyway).
        let descriptor = Glibc.open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else {
            switch errno {
            case ENOENT: throw .notFound(path: text)
            case EACCES, ELOOP: throw .accessViolation(path: text, reason: "permission denied")
            default: throw .unreadable(path: text, cause: "open failed (errno \(errno))")
            }
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let code = errno
            _ = Glibc.close(descriptor)
            throw .unreadable(path: text, cause: "fstat failed (errno \(code))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            _ = Glibc.close(descriptor)
            throw .accessViolation(path: text, reason: "not a regular file")
        }
        let identity = FileIdentity(
            device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int(status.st_size),
            modificationSeconds: Int(status.st_mtim.tv_sec), modificationNanoseconds: Int(status.st_mtim.tv_nsec))
        return OpenedFile(descriptor: descriptor, identity: identity)
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = Glibc.realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Blocking: up to `count` bytes at `offset` (fewer only at the end of the file).
    func read(at offset: Int, count: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = 0
            while initialized < count {
                let result = pread(descriptor, buffer.baseAddress! + initialized, count - initialized, off_t(offset + initialized))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw FileReadError(errno: errno)
                }
                if result == 0 { break }
                initialized += result
            }
        }
    }

    /// Blocking: the whole file, as it was sized when opened.
    func readAll() throws -> [UInt8] { try read(at: 0, count: identity.size) }
}

struct FileReadError: Error, CustomStringConvertible {
    var errno: CInt
    var description: String { "read failed: \(String(cString: strerror(errno)))" }
}

/// Reads an open file on the thread pool.
final class FileDescriptorReader: BootFileReader {
    private let file: OpenedFile
    private let threadPool: NIOThreadPool

    init(_ file: OpenedFile, threadPool: NIOThreadPool) {
        self.file = file
        self.threadPool = threadPool
    }

    func read(at offset: Int, count: Int) async throws -> [UInt8] {
        let file = self.file
        return try await threadPool.runIfActive { try file.read(at: offset, count: count) }
    }

    func close() async { file.close() }
}

/// Small files in memory, least recently used out first. Concurrent first requests for one file
/// share a single load.
actor HotBootFileCache {
    private struct Entry {
        var bytes: [UInt8]
        var lastUse: UInt64
    }

    private let capacity: Int
    private var entries: [FileIdentity: Entry] = [:]
    private var loading: [FileIdentity: Task<[UInt8], any Error>] = [:]
    private var totalBytes = 0
    private var clock: UInt64 = 0

    init(capacity: Int) { self.capacity = capacity }

    var usage: (count: Int, bytes: Int) { (entries.count, totalBytes) }

    func bytes(for identity: FileIdentity, load: @escaping @Sendable () async throws -> [UInt8]) async throws -> [UInt8] {
        clock += 1
        if let entry = entries[identity] {
            entries[identity]?.lastUse = clock
            return entry.bytes
        }
        if let pending = loading[identity] { return try await pending.value }
        let task = Task { try await load() }
        loading[identity] = task
        defer { loading[identity] = nil }
        let bytes = try await task.value
        insert(bytes, for: identity)
        return bytes
    }

    private func insert(_ bytes: [UInt8], for identity: FileIdentity) {
        guard entries[identity] == nil, bytes.count <= capacity else { return }
        // A file replaced on disk gets a new identity; drop the old content of the same inode.
        for (old, entry) in entries where old.device == identity.device && old.inode == identity.inode {
            totalBytes -= entry.bytes.count
            entries[old] = nil
        }
        while totalBytes + bytes.count > capacity, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            totalBytes -= oldest.value.bytes.count
            entries[oldest.key] = nil
        }
        entries[identity] = Entry(bytes: bytes, lastUse: clock)
        totalBytes += bytes.count
    }
}
