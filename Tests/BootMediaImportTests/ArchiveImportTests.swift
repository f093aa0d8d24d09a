import ApplianceTesting
import BootMediaImport
import Foundation
import ProvisioningModel
import Testing

/// Extracting members of real archives (an ISO 9660 image made by xorriso, a tar.gz made by tar)
/// served over HTTP on 127.0.0.1.
@Suite("boot media archives", .serialized, .timeLimit(.minutes(3)))
struct ArchiveImportTests {
    static let kernel = BootMediaFixtures.randomBytes(700_000, seed: 1)
    static let initrd = BootMediaFixtures.randomBytes(1_300_000, seed: 2)
    static let other = BootMediaFixtures.randomBytes(50_000, seed: 3)

    /// A served directory holding `name`, built from casper/vmlinuz, casper/initrd and a file not asked for.
    static func makeSite(
        archive name: String, build: (String, String) async throws -> Void
    ) async throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory(prefix: "anvil-import-archive")
        let tree = directory.file("tree")
        try BootMediaFixtures.write(["casper/vmlinuz": kernel, "casper/initrd": initrd, "md5sum.txt": other], under: tree)
        try FileManager.default.createDirectory(atPath: directory.file("served"), withIntermediateDirectories: true)
        let archive = directory.file("served/\(name)")
        try await build(tree, archive)
        return (directory, try BootMediaFixtures.sha256(file: archive))
    }

    static func bootEnv(url: String, sha256: String, extract: [String: String]) -> BootEnv {
        BootEnv(
            name: "ubuntu-fixture", sources: [BootEnvSource(architecture: "amd64", url: url, sha256: sha256, extract: extract)])
    }

    @Test("two members of an ISO land byte-identical; a second import downloads nothing; --force does it again")
    func iso() async throws {
        let (directory, sha) = try await Self.makeSite(archive: "test.iso", build: BootMediaFixtures.makeISO(of:at:))
        defer { directory.remove() }
        let importer = BootMediaImporter(
            bootFilesDirectory: directory.file("boot-files"), cacheDirectory: directory.file("cache"))
        try await RangeFileServer.serving(directory.file("served")) { base, log in
            let env = Self.bootEnv(
                url: "\(base)/test.iso", sha256: sha,
                extract: ["casper/vmlinuz": "ubuntu/amd64/vmlinuz", "/casper/initrd": "ubuntu/amd64/initrd"])
            let report = try await importer.run(env)
            #expect(report.placed.map(\.target) == ["ubuntu/amd64/initrd", "ubuntu/amd64/vmlinuz"])
            #expect(report.placed.map(\.size) == [Int64(Self.initrd.count), Int64(Self.kernel.count)])
            #expect(
                try Array(Data(contentsOf: URL(fileURLWithPath: directory.file("boot-files/ubuntu/amd64/vmlinuz"))))
                    == Self.kernel)
            #expect(
                try Array(Data(contentsOf: URL(fileURLWithPath: directory.file("boot-files/ubuntu/amd64/initrd")))) == Self.initrd
            )
            #expect(
                !FileManager.default.fileExists(atPath: directory.file("boot-files/md5sum.txt")),
                "only listed members are extracted")
            let manifest = try #require(importer.readManifest(for: "ubuntu-fixture"))
            #expect(
                manifest.sources.first?.files.map(\.sha256) == [
                    BootMediaFixtures.sha256(Self.initrd), BootMediaFixtures.sha256(Self.kernel),
                ])
            #expect(log.all.count == 1)

            let again = try await importer.run(env)
            #expect(again.placed.isEmpty && again.transferred == 0)
            #expect(log.all.count == 1, "a second import made a request: \(log.all)")

            let forced = try await importer.run(env, force: true)
            #expect(forced.placed.count == 2)
            #expect(log.all.count == 2)
        }
    }

    @Test(
        "a listed member missing from the ISO is an error naming it and the archive; nothing is placed; the verified download stays cached"
    )
    func missingMember() async throws {
        let (directory, sha) = try await Self.makeSite(archive: "test.iso", build: BootMediaFixtures.makeISO(of:at:))
        defer { directory.remove() }
        let importer = BootMediaImporter(
            bootFilesDirectory: directory.file("boot-files"), cacheDirectory: directory.file("cache"))
        try await RangeFileServer.serving(directory.file("served")) { base, log in
            let url = "\(base)/test.iso"
            let env = Self.bootEnv(
                url: url, sha256: sha,
                extract: ["casper/vmlinuz": "ubuntu/amd64/vmlinuz", "casper/initrd.lz": "ubuntu/amd64/initrd"])
            do {
                _ = try await importer.run(env)
                Issue.record("a missing member imported")
            } catch {
                #expect(
                    error as? BootMediaImportError
                        == .archive(.missingMembers(["casper/initrd.lz"], archive: "test.iso", url: url)))
                #expect("\(error)" == "member 'casper/initrd.lz' not found in the archive test.iso (from \(url))")
            }
            let left = try FileManager.default.subpathsOfDirectory(atPath: directory.file("boot-files"))
            #expect(left.filter { $0.hasPrefix("ubuntu/amd64/") }.isEmpty, "half an import was left: \(left)")
            #expect(importer.readManifest(for: "ubuntu-fixture") == nil)

            // The corrected definition extracts from the cached, verified download: no second request.
            let fixed = Self.bootEnv(
                url: url, sha256: sha,
                extract: ["casper/vmlinuz": "ubuntu/amd64/vmlinuz", "casper/initrd": "ubuntu/amd64/initrd"])
            let report = try await importer.run(fixed)
            #expect(report.placed.count == 2 && report.transferred == 0)
            #expect(log.all.count == 1)
        }
    }

    @Test("members of a tar.gz (named ./casper/…) are found by their plain paths")
    func tarGz() async throws {
        let (directory, sha) = try await Self.makeSite(archive: "netboot.tar.gz", build: BootMediaFixtures.makeTarGz(of:at:))
        defer { directory.remove() }
        let importer = BootMediaImporter(
            bootFilesDirectory: directory.file("boot-files"), cacheDirectory: directory.file("cache"))
        let server = try await PythonHTTPServer(serving: directory.file("served"), logDirectory: directory.path)
        defer { server.stop() }
        let env = Self.bootEnv(
            url: "\(server.url)/netboot.tar.gz", sha256: sha,
            extract: ["casper/vmlinuz": "deb/linux", "casper/initrd": "deb/initrd.gz"])
        let report = try await importer.run(env)
        #expect(report.placed.map(\.target) == ["deb/initrd.gz", "deb/linux"])
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: directory.file("boot-files/deb/linux")))) == Self.kernel)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: directory.file("boot-files/deb/initrd.gz")))) == Self.initrd)
    }

    @Test("a download that is not an archive is a clear error naming it")
    func notAnArchive() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-import-archive")
        defer { directory.remove() }
        let bytes = BootMediaFixtures.randomBytes(10_000, seed: 9)
        try BootMediaFixtures.write(["noise.iso": bytes], under: directory.file("served"))
        let importer = BootMediaImporter(
            bootFilesDirectory: directory.file("boot-files"), cacheDirectory: directory.file("cache"))
        try await RangeFileServer.serving(directory.file("served")) { base, _ in
            let env = Self.bootEnv(
                url: "\(base)/noise.iso", sha256: BootMediaFixtures.sha256(bytes), extract: ["casper/vmlinuz": "x/vmlinuz"])
            do {
                _ = try await importer.run(env)
                Issue.record("noise was extracted")
            } catch {
                #expect("\(error)".hasPrefix("cannot read the archive noise.iso: "), "\(error)")
            }
        }
    }
}
