import CArchive
import Crypto
import Foundation
import ProvisioningModel

#if canImport(Glibc)
    import Glibc
#endif

/// A file written from an archive member (or a download), with what the import manifest records.
public struct PlacedFile: Sendable, Hashable {
    /// The archive member it came from, or nil for a downloaded file placed as it is.
    public var member: String?
    /// The boot-file path (relative to the boot-files directory).
    public var target: String
    public var size: Int64
    public var sha256: String
}

public enum ArchiveError: Error, Sendable, Hashable, CustomStringConvertible {
    case unreadable(archive: String, reason: String)
    case missingMembers([String], archive: String, url: String)
    case notAFile(member: String, archive: String, reason: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let archive, let reason): "cannot read the archive \(archive): \(reason)"
        case .missingMembers(let members, let archive, let url):
            "\(members.count == 1 ? "member" : "members") \(members.map { "'\($0)'" }.joined(separator: ", ")) not found in the archive \(archive) (from \(url))"
        case .notAFile(let member, let archive, let reason): "'\(member)' in the archive \(archive) \(reason)"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason)"
        }
    }
}

/// Reads an archive with libarchive (ISO 9660, tar with any compression, cpio, zip…) and writes only the
/// members asked for. Each is streamed to `<target>.tmp`, synced, and renamed into place only once every
/// member was found, so a target path never holds a half-written or partial set of files.
public enum ArchiveExtractor {
    /// `members`: archive member path → boot-file path under `root`. `archiveName` and `url` name the
    /// archive in errors.
    public static func extract(
        archive path: String, members: [String: String], into root: String, archiveName: String? = nil, url: String = ""
    ) throws(ArchiveError) -> [PlacedFile] {
        let name = archiveName ?? path
        var wanted: [String: (given: String, target: String)] = [:]
        for (member, target) in members {
            guard let normalized = BootEnvSource.normalizedMember(member) else {
                throw .missingMembers([member], archive: name, url: url)
            }
            wanted[normalized] = (member, target)
        }
        guard let archive = archive_read_new() else { throw .unreadable(archive: name, reason: "archive_read_new failed") }
        defer { archive_read_free(archive) }
        archive_read_support_filter_all(archive)
        archive_read_support_format_all(archive)
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK else {
            throw .unreadable(archive: name, reason: errorText(archive))
        }

        var written: [String: PlacedFile] = [:]  // by normalized member
        var temporaries: [(temporary: String, final: String)] = []
        var succeeded = false
        defer {
            if !succeeded { for file in temporaries { unlink(file.temporary) } }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }

        var entry: OpaquePointer?
        while written.count < wanted.count {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                throw .unreadable(archive: name, reason: errorText(archive))
            }
            guard let raw = archive_entry_pathname(entry), let member = BootEnvSource.normalizedMember(String(cString: raw)),
                let asked = wanted[member], written[member] == nil
            else { continue }
            let (given, target) = asked
            if let link = archive_entry_symlink(entry) {
                throw .notAFile(
                    member: given, archive: name,
                    reason: "is a symbolic link to '\(String(cString: link))'; list that member instead")
            }
            if let link = archive_entry_hardlink(entry) {
                throw .notAFile(
                    member: given, archive: name, reason: "is a hard link to '\(String(cString: link))'; list that member instead"
                )
            }
            guard archive_entry_filetype(entry) == 0o100000 else {
                throw .notAFile(member: given, archive: name, reason: "is not a regular file")
            }
            let final = root + "/" + target
            let temporary = final + ".tmp"
            try makeParent(of: final)
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw .writeFailed(path: temporary, reason: String(cString: strerror(errno))) }
            temporaries.append((temporary, final))
            defer { close(fd) }
            var hasher = SHA256()
            var size: Int64 = 0
            while true {
                let count = archive_read_data(archive, buffer.baseAddress, buffer.count)
                if count < 0 { throw .unreadable(archive: name, reason: "reading '\(given)': \(errorText(archive))") }
                if count == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                try writeAll(fd, chunk, path: temporary)
                hasher.update(bufferPointer: chunk)
                size += Int64(count)
            }
            guard fsync(fd) == 0 else { throw .writeFailed(path: temporary, reason: String(cString: strerror(errno))) }
            written[member] = PlacedFile(member: given, target: target, size: size, sha256: hexDigest(hasher.finalize()))
        }
        let missing = wanted.keys.filter { written[$0] == nil }.map { wanted[$0]!.given }.sorted()
        guard missing.isEmpty else { throw .missingMembers(missing, archive: name, url: url) }
        for file in temporaries {
            guard rename(file.temporary, file.final) == 0 else {
                throw .writeFailed(path: file.final, reason: String(cString: strerror(errno)))
            }
        }
        succeeded = true
        return written.values.sorted { $0.target < $1.target }
    }

    private static func errorText(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "error \(archive_errno(archive))"
    }

    static func makeParent(of path: String) throws(ArchiveError) {
        let parent = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: parent, reason: (error as NSError).localizedDescription)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(ArchiveError) {
        var offset = 0
        while offset < bytes.count {
            let count = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            offset += count
        }
    }
}

func hexDigest(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }
