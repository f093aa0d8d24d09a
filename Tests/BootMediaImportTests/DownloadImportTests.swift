import ApplianceTesting
import BootMediaImport
import Foundation
import ProvisioningModel
import Testing

/// Importing a boot environment's `file` sources over real HTTP on 127.0.0.1: Hummingbird's file
/// server (Range support) and `python3 -m http.server` (none).
@Suite("boot media download", .serialized, .timeLimit(.minutes(3)))
struct DownloadImportTests {
    static let payload = BootMediaFixtures.randomBytes(3 << 20, seed: 0xB007)

    struct Site {
        let directory: TemporaryDirectory
        var served: String { directory.file("served") }
        var bootFiles: String { directory.file("boot-files") }
        var cache: String { directory.file("data/import-cache") }
        var importer: BootMediaImporter { BootMediaImporter(bootFilesDirectory: bootFiles, cacheDirectory: cache) }

        init() throws {
            directory = try TemporaryDirectory(prefix: "anvil-import-download")
            try BootMediaFixtures.write(["media/vmlinuz": DownloadImportTests.payload], under: directory.file("served"))
        }
    }

    static func bootEnv(url: String, sha256: String = BootMediaFixtures.sha256(payload)) -> BootEnv {
        BootEnv(
            name: "fixture",
            sources: [BootEnvSource(architecture: "amd64", url: url, sha256: sha256, file: "fixture/amd64/vmlinuz")])
    }

    @Test(
        "a fresh download with the right checksum lands at its boot-file path; the manifest records it; a second run downloads nothing"
    )
    func freshDownload() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        try await RangeFileServer.serving(site.served) { base, log in
            let env = Self.bootEnv(url: "\(base)/media/vmlinuz")
            let report = try await site.importer.run(env)
            #expect(report.placed.map(\.target) == ["fixture/amd64/vmlinuz"])
            #expect(report.transferred == Int64(Self.payload.count))
            let placed = try Data(contentsOf: URL(fileURLWithPath: site.bootFiles + "/fixture/amd64/vmlinuz"))
            #expect(Array(placed) == Self.payload)
            let manifest = try #require(site.importer.readManifest(for: "fixture"))
            #expect(manifest.sources.map(\.sha256) == [BootMediaFixtures.sha256(Self.payload)])
            #expect(
                manifest.sources.first?.files == [
                    BootMediaManifest.File(
                        path: "fixture/amd64/vmlinuz", size: Int64(Self.payload.count),
                        sha256: BootMediaFixtures.sha256(Self.payload))
                ])
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: site.cache).isEmpty,
                "the placed download leaves no copy behind")

            let again = try await site.importer.run(env)
            #expect(again.placed.isEmpty && again.skipped == [0] && again.transferred == 0)
            #expect(log.all.count == 1, "\(log.all)")
        }
    }

    @Test("a checksum mismatch is an error showing expected and actual; the download is deleted and nothing is placed")
    func checksumMismatch() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        let wrong = String(repeating: "0", count: 64)
        try await RangeFileServer.serving(site.served) { base, _ in
            let url = "\(base)/media/vmlinuz"
            await #expect(
                throws: BootMediaImportError.checksumMismatch(
                    url: url, expected: wrong, actual: BootMediaFixtures.sha256(Self.payload))
            ) {
                try await site.importer.run(Self.bootEnv(url: url, sha256: wrong))
            }
        }
        #expect(!FileManager.default.fileExists(atPath: site.bootFiles + "/fixture/amd64/vmlinuz"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.cache).isEmpty)
        #expect(site.importer.readManifest(for: "fixture") == nil)
    }

    @Test("HTTP 404 is an error naming the URL and the status")
    func notFound() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        try await RangeFileServer.serving(site.served) { base, log in
            let url = "\(base)/media/missing.iso"
            do {
                _ = try await site.importer.run(Self.bootEnv(url: url))
                Issue.record("a 404 imported something")
            } catch {
                #expect(error as? BootMediaImportError == .download(.httpStatus(url: url, status: 404)))
                #expect("\(error)" == "\(url): the server answered HTTP 404")
            }
            #expect(log.all.map(\.status) == [404])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.cache).isEmpty, "an empty .partial was left")
        #expect(!FileManager.default.fileExists(atPath: site.bootFiles + "/fixture/amd64/vmlinuz"))
    }

    @Test("a port nobody listens on is an 'unreachable' error")
    func unreachable() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        // A port that was just in use and is now closed.
        let server = try await PythonHTTPServer(serving: site.served, logDirectory: site.directory.path)
        let port = server.port
        server.stop()
        let url = "http://127.0.0.1:\(port)/media/vmlinuz"
        do {
            _ = try await site.importer.run(Self.bootEnv(url: url))
            Issue.record("an unreachable server imported something")
        } catch {
            guard case .download(.unreachable(let failedURL, let reason)) = error else {
                Issue.record("expected unreachable, got \(error)")
                return
            }
            #expect(failedURL == url)
            #expect("\(error)".contains("cannot reach the server"), "\(error) (\(reason))")
        }
    }

    @Test(
        "an interrupted download resumes with a Range request: only the missing half is transferred and the file is byte-identical"
    )
    func resumes() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        let sha = BootMediaFixtures.sha256(Self.payload)
        let half = Self.payload.count / 2
        try FileManager.default.createDirectory(atPath: site.cache, withIntermediateDirectories: true)
        try Data(Self.payload.prefix(half)).write(to: URL(fileURLWithPath: "\(site.cache)/\(sha).partial"))
        try await RangeFileServer.serving(site.served) { base, log in
            let report = try await site.importer.run(Self.bootEnv(url: "\(base)/media/vmlinuz"))
            #expect(report.transferred == Int64(Self.payload.count - half))
            #expect(log.all == [RequestLog.Entry(path: "/media/vmlinuz", range: "bytes=\(half)-", status: 206)])
        }
        let placed = try Data(contentsOf: URL(fileURLWithPath: site.bootFiles + "/fixture/amd64/vmlinuz"))
        #expect(Array(placed) == Self.payload)
    }

    @Test("cancelling an import mid-download keeps the .partial; the next run resumes it with a Range request")
    func cancelThenResume() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        let half = Int64(Self.payload.count / 2)
        let partial = "\(site.cache)/\(BootMediaFixtures.sha256(Self.payload)).partial"
        try await RangeFileServer.serving(site.served) { base, log in
            let progress = ProgressRecorder()
            let stalledURL = "\(base)/stall/media/vmlinuz"
            let importer = site.importer
            let running = Task {
                try await importer.run(Self.bootEnv(url: stalledURL)) { event in
                    if case .progress(_, let value) = event { progress.append(value) }
                }
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while (progress.all.last?.bytesDone ?? 0) < half, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            running.cancel()
            let outcome = await running.result
            guard case .failure(let error) = outcome else {
                Issue.record("a stalled download finished")
                return
            }
            #expect(error as? BootMediaImportError == .download(.cancelled(url: stalledURL)))
            let kept = try FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int
            #expect(kept.map(Int64.init) == half)
            #expect(!FileManager.default.fileExists(atPath: site.bootFiles + "/fixture/amd64/vmlinuz"))

            let report = try await importer.run(Self.bootEnv(url: "\(base)/media/vmlinuz"))
            #expect(report.transferred == Int64(Self.payload.count) - half)
            #expect(log.all.last == RequestLog.Entry(path: "/media/vmlinuz", range: "bytes=\(half)-", status: 206), "\(log.all)")
        }
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: site.bootFiles + "/fixture/amd64/vmlinuz"))) == Self.payload)
    }

    @Test("a server that ignores the Range (200, python's http.server) restarts the partial file cleanly")
    func rangeIgnored() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        let sha = BootMediaFixtures.sha256(Self.payload)
        try FileManager.default.createDirectory(atPath: site.cache, withIntermediateDirectories: true)
        // Not even a prefix of the file: kept, it would fail the checksum.
        try Data(BootMediaFixtures.randomBytes(1 << 20, seed: 7)).write(to: URL(fileURLWithPath: "\(site.cache)/\(sha).partial"))
        let server = try await PythonHTTPServer(serving: site.served, logDirectory: site.directory.path)
        defer { server.stop() }
        let progress = ProgressRecorder()
        let report = try await site.importer.run(Self.bootEnv(url: "\(server.url)/media/vmlinuz")) { event in
            if case .progress(_, let value) = event { progress.append(value) }
        }
        #expect(report.transferred == Int64(Self.payload.count))
        #expect(server.requests == ["GET /media/vmlinuz HTTP/1.1 200"])
        let placed = try Data(contentsOf: URL(fileURLWithPath: site.bootFiles + "/fixture/amd64/vmlinuz"))
        #expect(Array(placed) == Self.payload)
        let last = try #require(progress.all.last)
        #expect(last.finished && last.bytesDone == Int64(Self.payload.count) && last.bytesTotal == Int64(Self.payload.count))
    }

    @Test("a redirect is followed to the file")
    func redirect() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        try await RangeFileServer.serving(site.served) { base, log in
            let report = try await site.importer.run(Self.bootEnv(url: "\(base)/moved/media/vmlinuz"))
            #expect(report.placed.count == 1)
            #expect(log.all.map(\.status) == [302, 200], "\(log.all)")
        }
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: site.bootFiles + "/fixture/amd64/vmlinuz"))) == Self.payload)
    }

    @Test("a .partial that already holds the whole file is completed by one empty range request, nothing transferred")
    func partialComplete() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        try FileManager.default.createDirectory(atPath: site.cache, withIntermediateDirectories: true)
        try Data(Self.payload).write(to: URL(fileURLWithPath: "\(site.cache)/\(BootMediaFixtures.sha256(Self.payload)).partial"))
        try await RangeFileServer.serving(site.served) { base, log in
            // Hummingbird answers a range starting at the end with an empty 206 (others send 416, which restarts the file).
            let report = try await site.importer.run(Self.bootEnv(url: "\(base)/media/vmlinuz"))
            #expect(report.transferred == 0)
            #expect(
                log.all == [RequestLog.Entry(path: "/media/vmlinuz", range: "bytes=\(Self.payload.count)-", status: 206)],
                "\(log.all)")
        }
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: site.bootFiles + "/fixture/amd64/vmlinuz"))) == Self.payload)
    }

    @Test("a boot-files directory that cannot be created is an error naming the path")
    func unwritable() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        // A regular file where the boot-files directory should be.
        FileManager.default.createFile(atPath: site.bootFiles, contents: Data("not a directory".utf8))
        try await RangeFileServer.serving(site.served) { base, _ in
            do {
                _ = try await site.importer.run(Self.bootEnv(url: "\(base)/media/vmlinuz"))
                Issue.record("imported into a file")
            } catch {
                guard case .io(let path, _) = error as? BootMediaImportError else {
                    Issue.record("expected an I/O error, got \(error)")
                    return
                }
                #expect(path == site.bootFiles, "\(error)")
            }
        }
    }

    @Test("a boot environment without sources is an error naming it")
    func noSources() async throws {
        let site = try Site()
        defer { site.directory.remove() }
        await #expect(throws: BootMediaImportError.noSources(bootEnv: "empty")) {
            try await site.importer.run(BootEnv(name: "empty"))
        }
    }
}

final class ProgressRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [DownloadProgress] = []

    func append(_ value: DownloadProgress) { lock.withLock { values.append(value) } }
    var all: [DownloadProgress] { lock.withLock { values } }
}
