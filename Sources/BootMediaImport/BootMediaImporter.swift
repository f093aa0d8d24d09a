import Crypto
import Foundation
import ProvisioningModel

#if canImport(Glibc)
    import Glibc
#endif

public enum BootMediaImportError: Error, Sendable, Hashable, CustomStringConvertible {
    case noSources(bootEnv: String)
    case checksumMismatch(url: String, expected: String, actual: String)
    case download(DownloadError)
    case archive(ArchiveError)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .noSources(let name): "boot environment '\(name)' lists no sources to import"
        case .checksumMismatch(let url, let expected, let actual):
            "\(url): checksum mismatch: expected sha256 \(expected), got \(actual) (the download was deleted; nothing was placed)"
        case .download(let error): "\(error)"
        case .archive(let error): "\(error)"
        case .io(let path, let reason): "\(path): \(reason)"
        }
    }
}

/// Imports a boot environment's OS media into the boot-files directory: per source, download into a
/// cache (resuming an interrupted download), verify the SHA-256, then place the file or extract the
/// listed archive members; record what was placed in `<boot-files>/.imports/<bootenv>.json` so a
/// second run skips what is already there.
public struct BootMediaImporter: Sendable {
    public enum Event: Sendable {
        case skipped(index: Int, source: BootEnvSource)
        case fetching(index: Int, source: BootEnvSource, reason: String)
        /// A verified download from an earlier run is in the cache: nothing to transfer.
        case cached(index: Int, path: String)
        /// Continuing an interrupted download that already has this many bytes.
        case resuming(index: Int, bytes: Int64)
        case progress(index: Int, DownloadProgress)
        case downloaded(index: Int, DownloadResult)
        case placed(index: Int, files: [PlacedFile])
    }

    public struct Report: Sendable {
        public var placed: [PlacedFile] = []
        public var skipped: [Int] = []
        /// Bytes received over the network in this run.
        public var transferred: Int64 = 0
    }

    public var bootFilesDirectory: String
    /// Downloads are kept here (`<sha256>`, `<sha256>.partial` while in progress) until placed.
    public var cacheDirectory: String
    public var downloader = CurlDownload()

    public init(bootFilesDirectory: String, cacheDirectory: String) {
        self.bootFilesDirectory = bootFilesDirectory
        self.cacheDirectory = cacheDirectory
    }

    public func manifestPath(for bootEnv: String) -> String { bootFilesDirectory + "/.imports/\(bootEnv).json" }

    public func readManifest(for bootEnv: String) -> BootMediaManifest? {
        guard let data = FileManager.default.contents(atPath: manifestPath(for: bootEnv)) else { return nil }
        // An unreadable manifest only costs a fresh import.
        return try? JSONDecoder().decode(BootMediaManifest.self, from: data)
    }

    /// The plan for `bootEnv` given what is on disk now.
    public func plan(_ bootEnv: BootEnv, force: Bool) -> BootMediaImportPlan {
        var existing: [String: Int64] = [:]
        for source in bootEnv.sources {
            for target in source.targets.map(BootMediaImportPlan.normalized) {
                var info = stat()
                if stat(bootFilesDirectory + "/" + target, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                    existing[target] = Int64(info.st_size)
                }
            }
        }
        return BootMediaImportPlan(bootEnv: bootEnv, manifest: readManifest(for: bootEnv.name), existing: existing, force: force)
    }

    public func run(
        _ bootEnv: BootEnv, force: Bool = false, events: @escaping @Sendable (Event) -> Void = { _ in }
    ) async throws(BootMediaImportError) -> Report {
        guard !bootEnv.sources.isEmpty else { throw .noSources(bootEnv: bootEnv.name) }
        try makeDirectory(bootFilesDirectory)
        try makeDirectory(cacheDirectory)
        var report = Report()
        var manifest = readManifest(for: bootEnv.name) ?? BootMediaManifest(bootEnv: bootEnv.name)
        for step in plan(bootEnv, force: force).steps {
            guard case .fetch(let reason) = step.action else {
                report.skipped.append(step.index)
                events(.skipped(index: step.index, source: step.source))
                continue
            }
            events(.fetching(index: step.index, source: step.source, reason: reason))
            let (download, transferred) = try await fetch(step.source, index: step.index, events: events)
            report.transferred += transferred
            let files = try place(step.source, from: download)
            events(.placed(index: step.index, files: files))
            report.placed += files
            // The archive is not needed once its members are placed (a placed file was renamed away).
            unlink(download)
            manifest.record(
                BootMediaManifest.Source(
                    url: step.source.url, sha256: step.source.sha256.lowercased(),
                    files: files.map {
                        BootMediaManifest.File(path: $0.target, size: $0.size, sha256: $0.sha256, member: $0.member)
                    }),
                keeping: bootEnv.sources)
            try write(manifest)
        }
        return report
    }

    /// A verified copy of the source's download in the cache: from an earlier run, or downloaded now.
    private func fetch(
        _ source: BootEnvSource, index: Int, events: @escaping @Sendable (Event) -> Void
    ) async throws(BootMediaImportError) -> (path: String, transferred: Int64) {
        let expected = source.sha256.lowercased()
        let complete = cacheDirectory + "/" + expected
        let partial = complete + ".partial"
        if FileManager.default.fileExists(atPath: complete) {
            if try Self.sha256(ofFile: complete) == expected {
                events(.cached(index: index, path: complete))
                return (complete, 0)
            }
            unlink(complete)
        }
        var info = stat()
        if stat(partial, &info) == 0, info.st_size > 0 { events(.resuming(index: index, bytes: Int64(info.st_size))) }
        let result: DownloadResult
        do {
            result = try await downloader.download(source.url, to: partial) { events(.progress(index: index, $0)) }
        } catch {
            // Keep what arrived for the next run to resume; an empty file is no use to it.
            if stat(partial, &info) == 0, info.st_size == 0 { unlink(partial) }
            throw .download(error)
        }
        events(.downloaded(index: index, result))
        guard result.sha256 == expected else {
            unlink(partial)
            throw .checksumMismatch(url: source.url, expected: expected, actual: result.sha256)
        }
        guard rename(partial, complete) == 0 else { throw .io(path: complete, reason: String(cString: strerror(errno))) }
        return (complete, result.transferred)
    }

    private func place(_ source: BootEnvSource, from download: String) throws(BootMediaImportError) -> [PlacedFile] {
        if let extract = source.extract {
            let normalized = extract.mapValues(BootMediaImportPlan.normalized)
            let name = URL(string: source.url)?.lastPathComponent ?? download
            do {
                return try ArchiveExtractor.extract(
                    archive: download, members: normalized, into: bootFilesDirectory, archiveName: name, url: source.url)
            } catch {
                throw .archive(error)
            }
        }
        let target = BootMediaImportPlan.normalized(source.file ?? "")
        let final = bootFilesDirectory + "/" + target
        do {
            try ArchiveExtractor.makeParent(of: final)
        } catch {
            throw .archive(error)
        }
        var info = stat()
        guard stat(download, &info) == 0 else { throw .io(path: download, reason: String(cString: strerror(errno))) }
        // Verified above and synced by the download: a rename places it whole. Across file systems, copy.
        if rename(download, final) != 0 {
            guard errno == EXDEV else { throw .io(path: final, reason: String(cString: strerror(errno))) }
            try copy(download, to: final)
        }
        return [PlacedFile(member: nil, target: target, size: Int64(info.st_size), sha256: source.sha256.lowercased())]
    }

    private func copy(_ source: String, to final: String) throws(BootMediaImportError) {
        let temporary = final + ".tmp"
        let input = open(source, O_RDONLY)
        guard input >= 0 else { throw .io(path: source, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        let output = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard output >= 0 else { throw .io(path: temporary, reason: String(cString: strerror(errno))) }
        var closed = false
        defer { if !closed { close(output); unlink(temporary) } }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(input, buffer.baseAddress, buffer.count)
            if count < 0 { throw .io(path: source, reason: String(cString: strerror(errno))) }
            if count == 0 { break }
            do {
                try ArchiveExtractor.writeAll(output, UnsafeRawBufferPointer(rebasing: buffer[..<count]), path: temporary)
            } catch {
                throw .archive(error)
            }
        }
        guard fsync(output) == 0 else { throw .io(path: temporary, reason: String(cString: strerror(errno))) }
        close(output)
        closed = true
        guard rename(temporary, final) == 0 else {
            unlink(temporary)
            throw .io(path: final, reason: String(cString: strerror(errno)))
        }
    }

    private func write(_ manifest: BootMediaManifest) throws(BootMediaImportError) {
        let path = manifestPath(for: manifest.bootEnv)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try makeDirectory((path as NSString).deletingLastPathComponent)
            try encoder.encode(manifest).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch let error as BootMediaImportError {
            throw error
        } catch {
            throw .io(path: path, reason: (error as NSError).localizedDescription)
        }
    }

    private func makeDirectory(_ path: String) throws(BootMediaImportError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .io(path: path, reason: (error as NSError).localizedDescription)
        }
    }

    static func sha256(ofFile path: String) throws(BootMediaImportError) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count < 0 { throw .io(path: path, reason: String(cString: strerror(errno))) }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        return hexDigest(hasher.finalize())
    }
}
