import ApplianceTesting
import Foundation
import Testing

/// `/files/` on the real `anvil serve` boot plane, driven with curl: whole files, HEAD, byte ranges,
/// revalidation, the packaged loaders, and every way out of the boot-file directory refused.
@Suite("Boot files over HTTP", .serialized, .timeLimit(.minutes(5)))
struct BootFilesHTTPTests {
    struct Fetch {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    /// Runs curl against the boot plane and splits status, headers and body.
    static func fetch(_ url: String, _ arguments: [String] = [], in directory: TemporaryDirectory) async throws -> Fetch {
        let body = directory.file("body-\(UUID().uuidString)")
        let headers = directory.file("headers-\(UUID().uuidString)")
        let result = try await AnvilServer.run(
            "/usr/bin/curl", ["--silent", "--max-time", "60", "--output", body, "--dump-header", headers, "--globoff", "--path-as-is"] + arguments + [url])
        #expect(result.status == 0, "curl \(arguments) \(url): \(result.stderr)")
        let headerText = (try? String(contentsOfFile: headers, encoding: .utf8)) ?? ""
        var fields: [String: String] = [:]
        var status = 0
        for line in headerText.split(separator: "\r\n") {
            if line.hasPrefix("HTTP/") { status = Int(line.split(separator: " ")[1]) ?? 0 }
            if let colon = line.firstIndex(of: ":") {
                fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return Fetch(status: status, headers: fields, body: FileManager.default.contents(atPath: body) ?? Data())
    }

    @Test("GET, HEAD, ranges, ETag revalidation, the packaged loaders, and no way out of the root")
    func bootFiles() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-boot-files")
        defer { directory.remove() }
        let root = directory.file("boot-files")
        try FileManager.default.createDirectory(atPath: root + "/debian-12", withIntermediateDirectories: true)
        var generator = SplitMix64(seed: 5)
        let kernel = Data((0..<(3 << 20) + 17).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try kernel.write(to: URL(fileURLWithPath: root + "/debian-12/linux"))
        try "secret\n".write(toFile: directory.file("outside.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: directory.file("outside.txt"))

        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--boot-files-dir", root, "--tftp-listen", "off"])
        defer { server.stopBlocking() }
        let url = "\(server.bootURL)/files/debian-12/linux"

        let whole = try await Self.fetch(url, in: directory)
        #expect(whole.status == 200)
        #expect(whole.body == kernel, "\(whole.body.count) bytes, expected \(kernel.count)")
        #expect(whole.headers["content-length"] == "\(kernel.count)")
        #expect(whole.headers["accept-ranges"] == "bytes")
        let etag = try #require(whole.headers["etag"])
        #expect(whole.headers["last-modified"] != nil)

        let head = try await Self.fetch(url, ["--head"], in: directory)
        // With --head curl writes the headers where the body would go: no body is the same as no file bytes.
        #expect(head.status == 200 && head.headers["content-length"] == "\(kernel.count)")
        #expect(head.body.count < 1024, "HEAD returned \(head.body.count) bytes")

        let first = try await Self.fetch(url, ["--header", "Range: bytes=0-99"], in: directory)
        #expect(first.status == 206 && first.body == kernel.prefix(100))
        #expect(first.headers["content-range"] == "bytes 0-99/\(kernel.count)")
        let tail = try await Self.fetch(url, ["--header", "Range: bytes=\(kernel.count - 10)-"], in: directory)
        #expect(tail.status == 206 && tail.body == kernel.suffix(10))
        let past = try await Self.fetch(url, ["--header", "Range: bytes=\(kernel.count)-"], in: directory)
        #expect(past.status == 416 && past.headers["content-range"] == "bytes */\(kernel.count)")

        let revalidated = try await Self.fetch(url, ["--header", "If-None-Match: \(etag)"], in: directory)
        #expect(revalidated.status == 304 && revalidated.body.isEmpty)

        // The loaders from Debian's ipxe package (installed by setup), as installed.
        let loader = try await Self.fetch("\(server.bootURL)/files/undionly.kpxe", in: directory)
        #expect(loader.status == 200)
        #expect(loader.body == FileManager.default.contents(atPath: "/usr/lib/ipxe/undionly.kpxe"))
        // Debian's /usr/lib/ipxe/ipxe.efi is a symlink to /boot/ipxe.efi: the packaged directory's links are trusted.
        let efiLoader = try await Self.fetch("\(server.bootURL)/files/ipxe.efi", in: directory)
        #expect(efiLoader.status == 200)
        #expect(efiLoader.body == FileManager.default.contents(atPath: "/usr/lib/ipxe/ipxe.efi"))

        for attempt in ["escape", "../outside.txt", "%2e%2e/outside.txt", "debian-12/%2e%2e/%2e%2e/outside.txt", "%2fetc/passwd", "debian-12"] {
            let refused = try await Self.fetch("\(server.bootURL)/files/\(attempt)", in: directory)
            #expect([400, 403, 404].contains(refused.status), "\(attempt): \(refused.status)")
            #expect(!String(decoding: refused.body, as: UTF8.self).contains("secret"), "\(attempt) leaked the file outside the root")
        }
        let missing = try await Self.fetch("\(server.bootURL)/files/nothing-here", in: directory)
        #expect(missing.status == 404)
        #expect(String(decoding: missing.body, as: UTF8.self).contains("\"code\":\"not_found\""))
    }

    @Test("/boot/<mac>.ipxe renders the machine's boot environment; unknown MACs get discovery; a broken template is a 500 with the reason")
    func bootScripts() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-boot-scripts")
        defer { directory.remove() }
        // The shipped content plus one broken template, to see a rendering failure end to end.
        let content = directory.file("content")
        try FileManager.default.createDirectory(atPath: content, withIntermediateDirectories: true)
        for folder in ["bootenvs", "templates"] {
            try FileManager.default.copyItem(atPath: AnvilServer.repositoryRoot + "/" + folder, toPath: content + "/" + folder)
        }
        try "#!ipxe\necho {{ machine.name }} {{ machine.no_such_field }}\n".write(
            toFile: content + "/templates/ipxe/broken.ipxe.tmpl", atomically: true, encoding: .utf8)
        try """
            name: broken
            templates:
              - {name: ipxe, path: "boot/{{ machine.mac }}.ipxe", template: ipxe/broken.ipxe.tmpl}
            """.write(toFile: content + "/bootenvs/broken.yaml", atomically: true, encoding: .utf8)

        let server = AnvilServer(dataDirectory: directory.file("data"), contentDirectory: content)
        try await server.start(extraArguments: ["--tftp-listen", "off"])
        defer { server.stopBlocking() }

        let unknown = try await Self.fetch("\(server.bootURL)/boot/52:54:00:aa:00:01.ipxe", in: directory)
        let unknownScript = String(decoding: unknown.body, as: UTF8.self)
        #expect(unknown.status == 200)
        #expect(unknownScript.hasPrefix("#!ipxe\n"), "\(unknownScript)")
        #expect(unknownScript.contains("kernel \(server.bootURL)/files/discovery/amd64/vmlinuz initrd=initrd.gz console=tty0 console=ttyS0,115200n8"), "\(unknownScript)")
        #expect(unknownScript.contains("BOOTIF=01-52-54-00-aa-00-01"), "\(unknownScript)")
        #expect(unknownScript.contains("initrd \(server.bootURL)/files/discovery/amd64/initrd.gz"), "\(unknownScript)")

        for (name, bootEnv, mac) in [("disk-one", "local", "52:54:00:aa:00:02"), ("broken-one", "broken", "52:54:00:aa:00:03")] {
            let created = try await server.cli([
                "machines", "create", "--set", "name=\(name)", "--set", "bootEnv=\(bootEnv)", "--set", "interfaces=[{\"mac\":\"\(mac)\"}]",
            ])
            #expect(created.status == 0, "\(created.stderr)")
        }
        let local = try await Self.fetch("\(server.bootURL)/boot/52-54-00-AA-00-02.ipxe", in: directory)
        let localScript = String(decoding: local.body, as: UTF8.self)
        #expect(local.status == 200 && localScript.contains("sanboot --no-describe --drive 0x80") && localScript.contains("disk-one"), "\(localScript)")

        let broken = try await Self.fetch("\(server.bootURL)/boot/52:54:00:aa:00:03.ipxe", in: directory)
        let reason = String(decoding: broken.body, as: UTF8.self)
        #expect(broken.status == 500)
        #expect(reason.contains("render_failed") && reason.contains("unknown variable 'machine.no_such_field'"), "\(reason)")
        #expect(!reason.contains("#!ipxe"), "half a script was sent: \(reason)")

        let notAScript = try await Self.fetch("\(server.bootURL)/boot/not-a-mac.ipxe", in: directory)
        #expect(notAScript.status == 404)
    }
}
