import ApplianceTesting
import Foundation
import Testing

/// `anvil bootenvs import` as built: the real binary against an ISO built by xorriso and served by
/// `python3 -m http.server` on 127.0.0.1, with a temporary content and data directory.
@Suite("anvil bootenvs import", .serialized, .timeLimit(.minutes(5)))
struct ImportCLITests {
    @Test(
        "imports an ISO's kernel and initrd, reports progress and sizes, is a no-op the second time; each failure has its exit code"
    )
    func importsISO() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-import-cli")
        defer { directory.remove() }
        let kernel = BootMediaFixtures.randomBytes(2_000_000, seed: 11)
        let initrd = BootMediaFixtures.randomBytes(3_000_000, seed: 12)
        try BootMediaFixtures.write(["casper/vmlinuz": kernel, "casper/initrd": initrd], under: directory.file("tree"))
        try FileManager.default.createDirectory(atPath: directory.file("served"), withIntermediateDirectories: true)
        try await BootMediaFixtures.makeISO(of: directory.file("tree"), at: directory.file("served/live.iso"))
        let sha = try BootMediaFixtures.sha256(file: directory.file("served/live.iso"))
        let server = try await PythonHTTPServer(serving: directory.file("served"), logDirectory: directory.path)
        defer { server.stop() }

        let content = directory.file("content")
        func bootEnv(_ name: String, url: String, sha256: String = sha, extract: [String: String]? = nil) throws {
            let members = (extract ?? ["casper/vmlinuz": "\(name)/amd64/vmlinuz", "casper/initrd": "\(name)/amd64/initrd"])
                .sorted { $0.key < $1.key }.map { "          \($0.key): \($0.value)" }.joined(separator: "\n")
            let yaml = """
                name: \(name)
                description: Fixture for the import test
                architectures:
                  amd64:
                    kernel: \(name)/amd64/vmlinuz
                    initrds: [\(name)/amd64/initrd]
                sources:
                  - architecture: amd64
                    url: \(url)
                    sha256: \(sha256)
                    extract:
                \(members)

                """
            try BootMediaFixtures.write(["bootenvs/\(name).yaml": Array(yaml.utf8)], under: content)
        }
        try bootEnv("live", url: "\(server.url)/live.iso")
        let data = directory.file("data")
        let args = ["--content-dir", content, "--data-dir", data]

        let first = try await AnvilServer.run(AnvilServer.binary, ["bootenvs", "import", "live"] + args)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: data + "/boot-files/live/amd64/vmlinuz"))) == kernel)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: data + "/boot-files/live/amd64/initrd"))) == initrd)
        #expect(FileManager.default.fileExists(atPath: data + "/boot-files/.imports/live.json"))
        #expect(first.stdout.contains("100%"), "not a terminal: one line per 10%\n\(first.stdout)")
        #expect(first.stdout.contains("  placed live/amd64/initrd (2.9 MiB)"), "\(first.stdout)")
        #expect(first.stdout.contains("  placed live/amd64/vmlinuz (1.9 MiB)"), "\(first.stdout)")
        #expect(first.stdout.contains("live: 2 files placed (4.8 MiB) in \(data)/boot-files"), "\(first.stdout)")
        #expect(server.requests.count == 1)

        let second = try await AnvilServer.run(AnvilServer.binary, ["bootenvs", "import", "live"] + args)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(second.stdout.hasSuffix("live: up to date (1 of 1 sources in place), nothing downloaded\n"), "\(second.stdout)")
        #expect(server.requests.count == 1, "the second import downloaded: \(server.requests)")

        // --boot-files-dir puts them elsewhere (as anvil serve --boot-files-dir would serve them).
        let elsewhere = directory.file("site-boot-files")
        let moved = try await AnvilServer.run(
            AnvilServer.binary, ["bootenvs", "import", "live", "--boot-files-dir", elsewhere] + args)
        #expect(moved.status == 0, "\(moved.stdout)\(moved.stderr)")
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: elsewhere + "/live/amd64/vmlinuz"))) == kernel)

        // Failures, each with its message and exit code.
        try bootEnv("missing-url", url: "\(server.url)/nope.iso")
        try bootEnv("wrong-sum", url: "\(server.url)/live.iso", sha256: String(repeating: "0", count: 64))
        try bootEnv("missing-member", url: "\(server.url)/live.iso", extract: ["casper/initrd.gz": "m/initrd"])
        // Its own digest: with live.iso's, the verified download the missing-member run left in the cache would serve it.
        try bootEnv("closed-port", url: "http://127.0.0.1:1/live.iso", sha256: String(repeating: "1", count: 64))
        try BootMediaFixtures.write(["bootenvs/no-sources.yaml": Array("name: no-sources\n".utf8)], under: content)
        let cases: [(name: String, status: Int32, message: String)] = [
            ("unknown", 4, "error: unknown boot environment 'unknown': no bootenvs/unknown.yaml under \(content)"),
            ("no-sources", 6, "error: boot environment 'no-sources' (bootenvs/no-sources.yaml) lists no sources to import"),
            ("missing-url", 1, "error: missing-url: \(server.url)/nope.iso: the server answered HTTP 404"),
            (
                "wrong-sum", 1,
                "error: wrong-sum: \(server.url)/live.iso: checksum mismatch: expected sha256 \(String(repeating: "0", count: 64)), got \(sha)"
            ),
            (
                "missing-member", 1,
                "error: missing-member: member 'casper/initrd.gz' not found in the archive live.iso (from \(server.url)/live.iso)"
            ),
            ("closed-port", 7, "error: closed-port: http://127.0.0.1:1/live.iso: cannot reach the server"),
        ]
        for expected in cases {
            let result = try await AnvilServer.run(AnvilServer.binary, ["bootenvs", "import", expected.name] + args)
            #expect(result.status == expected.status, "\(expected.name): \(result.stdout)\(result.stderr)")
            #expect(result.stderr.hasPrefix(expected.message), "\(expected.name): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: data + "/boot-files/m"), "a failed import placed files")
    }
}
