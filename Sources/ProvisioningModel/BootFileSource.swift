/// Where boot files come from: loaders on disk (`undionly.kpxe`, `ipxe.efi`) and files rendered per
/// machine (`pxelinux.cfg/01-<mac>`, `grub.cfg-<mac>`). TFTP (and later HTTP boot) serve whatever
/// a source opens; sources never see a path that could leave their root (see ``BootFilePath``).
public protocol BootFileSource: Sendable {
    func open(_ request: BootFileRequest) async throws(BootFileOpenError) -> BootFile
}

/// A directory boot files are served from. Symlinks leading out of it are refused unless the
/// directory belongs to the OS (Debian's `/usr/lib/ipxe/ipxe.efi` is a link to `/boot/ipxe.efi`).
public struct BootFileRoot: Sendable, Hashable {
    public var path: String
    public var symlinksMayLeaveRoot: Bool

    public init(path: String, symlinksMayLeaveRoot: Bool = false) {
        self.path = path
        self.symlinksMayLeaveRoot = symlinksMayLeaveRoot
    }
}

/// A request for a boot file, with what is known about the asking machine.
public struct BootFileRequest: Sendable, Hashable {
    public var path: BootFilePath
    /// The client's IP address as text, when the protocol knows it (per-machine files, logs).
    public var clientAddress: String?

    public init(path: BootFilePath, clientAddress: String? = nil) {
        self.path = path
        self.clientAddress = clientAddress
    }
}

/// A relative path below a boot-file root, checked before any source sees it: not absolute, no `..`
/// component (also not percent-encoded, since some clients and proxies decode), no control
/// characters. Empty and `.` components are dropped, so `a//./b` is `a/b`.
public struct BootFilePath: Sendable, Hashable, CustomStringConvertible {
    public let components: [String]

    public init(validating requested: String) throws(BootFileOpenError) {
        guard !requested.isEmpty else { throw .notFound(path: requested) }
        guard !requested.hasPrefix("/") else { throw .accessViolation(path: requested, reason: "absolute paths are not served") }
        if requested.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) }) {
            throw .accessViolation(path: requested, reason: "control characters are not allowed in paths")
        }
        var components: [String] = []
        for component in requested.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." || Self.percentDecoded(component) == ".." || Self.percentDecoded(component) == "." {
                throw .accessViolation(path: requested, reason: "'..' is not allowed in paths")
            }
            components.append(String(component))
        }
        guard !components.isEmpty else { throw .notFound(path: requested) }
        self.components = components
    }

    public var description: String { components.joined(separator: "/") }

    /// `%2e%2E` → `..`; anything that is not a valid escape stays as it is.
    private static func percentDecoded(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An opened boot file.
public struct BootFile: Sendable {
    public enum Content: Sendable {
        /// Held in memory (rendered files, hot files); shared, never copied per transfer.
        case bytes([UInt8])
        /// Read on demand; the reader is closed when the transfer ends.
        case reader(any BootFileReader)
    }

    public var path: BootFilePath
    public var size: Int
    public var content: Content

    public init(path: BootFilePath, bytes: [UInt8]) {
        self.path = path
        self.size = bytes.count
        self.content = .bytes(bytes)
    }

    public init(path: BootFilePath, size: Int, reader: any BootFileReader) {
        self.path = path
        self.size = size
        self.content = .reader(reader)
    }
}

/// Random access to an open file's bytes. Implementations do their blocking I/O off the caller's thread.
public protocol BootFileReader: Sendable {
    /// Up to `count` bytes from `offset`; fewer only at the end of the file.
    func read(at offset: Int, count: Int) async throws -> [UInt8]
    /// Releases the file. Called once, when the transfer ends.
    func close() async
}

/// Why a boot file cannot be served. Protocol adapters map these to their errors (TFTP: codes 1 and 2).
public enum BootFileOpenError: Error, Sendable, Hashable, CustomStringConvertible {
    case notFound(path: String)
    /// Outside the root, a path the rules refuse, not a regular file, or not readable for the service.
    case accessViolation(path: String, reason: String)
    /// The file exists but reading it failed (an I/O error); the cause is kept for the log.
    case unreadable(path: String, cause: String)

    public var description: String {
        switch self {
        case .notFound(let path): "'\(path)' not found"
        case .accessViolation(let path, let reason): "'\(path)' refused: \(reason)"
        case .unreadable(let path, let cause): "'\(path)' could not be read: \(cause)"
        }
    }
}

/// Files held in memory, keyed by path: rendered or test files.
public struct InMemoryBootFileSource: BootFileSource {
    public var files: [BootFilePath: [UInt8]]

    public init(files: [BootFilePath: [UInt8]] = [:]) { self.files = files }

    /// Paths as text; each must be a valid ``BootFilePath``.
    public init(_ files: [String: [UInt8]]) throws(BootFileOpenError) {
        var checked: [BootFilePath: [UInt8]] = [:]
        for (path, bytes) in files { checked[try BootFilePath(validating: path)] = bytes }
        self.files = checked
    }

    public func open(_ request: BootFileRequest) async throws(BootFileOpenError) -> BootFile {
        guard let bytes = files[request.path] else { throw .notFound(path: request.path.description) }
        return BootFile(path: request.path, bytes: bytes)
    }
}

/// Sources asked in order: the first that has the file serves it, so rendered per-machine files can
/// sit in front of the boot-files directory. Only "not found" passes a request on; a refusal stops it.
public struct LayeredBootFileSource: BootFileSource {
    public var layers: [any BootFileSource]

    public init(_ layers: [any BootFileSource]) { self.layers = layers }

    public func open(_ request: BootFileRequest) async throws(BootFileOpenError) -> BootFile {
        for layer in layers {
            do {
                return try await layer.open(request)
            } catch .notFound {
                continue
            }
        }
        throw .notFound(path: request.path.description)
    }
}
