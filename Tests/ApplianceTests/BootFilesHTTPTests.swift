import ApplianceTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

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

    @Test(
        "large files by sendfile: byte-identical whole and ranged, concurrent, keep-alive and pipelining around them, a client gone mid-download leaks nothing"
    )
    func largeFiles() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-boot-large")
        defer { directory.remove() }
        let root = directory.file("boot-files")
        try FileManager.default.createDirectory(atPath: root + "/images", withIntermediateDirectories: true)
        // 64 MiB: random 1 MiB blocks with holes of zeros between them, so every offset matters.
        var generator = SplitMix64(seed: 64)
        var image = Data(count: 64 << 20)
        image.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for block in stride(from: 0, to: 64, by: 2) {
                for index in (block << 17)..<((block + 1) << 17) { words[index] = generator.next() }
            }
        }
        let imagePath = root + "/images/disk.img"
        try image.write(to: URL(fileURLWithPath: imagePath))
        try "#!ipxe\necho small\n".write(toFile: root + "/small.ipxe", atomically: true, encoding: .utf8)

        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--boot-files-dir", root, "--tftp-listen", "off"])
        defer { server.stopBlocking() }
        let url = "\(server.bootURL)/files/images/disk.img"

        let whole = try await Self.fetch(url, in: directory)
        #expect(whole.status == 200 && whole.headers["content-length"] == "\(image.count)")
        #expect(whole.body == image, "\(whole.body.count) bytes differ from the \(image.count)-byte image")
        #expect(whole.headers["content-type"] == "application/octet-stream")
        let etag = try #require(whole.headers["etag"])
        let lastModified = try #require(whole.headers["last-modified"])

        for (range, bytes) in [
            ("0-99", 0..<100), ("\(1 << 20)-\((3 << 20) - 1)", (1 << 20)..<(3 << 20)),
            ("\(image.count - 5)-", (image.count - 5)..<image.count), ("-7", (image.count - 7)..<image.count),
        ] {
            let part = try await Self.fetch(url, ["--header", "Range: bytes=\(range)"], in: directory)
            #expect(
                part.status == 206 && part.body == image.subdata(in: bytes),
                "bytes=\(range): \(part.status), \(part.body.count) bytes")
            #expect(part.headers["content-range"] == "bytes \(bytes.lowerBound)-\(bytes.upperBound - 1)/\(image.count)")
            #expect(part.headers["content-length"] == "\(bytes.count)")
        }
        let several = try await Self.fetch(url, ["--header", "Range: bytes=0-9,20-29"], in: directory)
        #expect(several.status == 200 && several.body.count == image.count)
        let past = try await Self.fetch(url, ["--header", "Range: bytes=\(image.count)-"], in: directory)
        #expect(past.status == 416 && past.headers["content-range"] == "bytes */\(image.count)")
        let head = try await Self.fetch(url, ["--head"], in: directory)
        #expect(head.status == 200 && head.headers["content-length"] == "\(image.count)" && head.headers["etag"] == etag)
        #expect(head.body.count < 1024, "HEAD returned \(head.body.count) bytes")
        let unchanged = try await Self.fetch(url, ["--header", "If-None-Match: \(etag)"], in: directory)
        #expect(unchanged.status == 304 && unchanged.body.isEmpty)
        let notModified = try await Self.fetch(url, ["--header", "If-Modified-Since: \(lastModified)"], in: directory)
        #expect(notModified.status == 304 && notModified.body.isEmpty)
        let rangeStillValid = try await Self.fetch(
            url, ["--header", "Range: bytes=0-9", "--header", "If-Range: \(etag)"], in: directory)
        #expect(rangeStillValid.status == 206 && rangeStillValid.body == image.prefix(10))
        let rangeStale = try await Self.fetch(
            url, ["--header", "Range: bytes=0-9", "--header", "If-Range: \"stale\""], in: directory)
        #expect(rangeStale.status == 200 && rangeStale.body.count == image.count)
        let script = try await Self.fetch("\(server.bootURL)/files/small.ipxe", in: directory)
        #expect(script.status == 200 && script.headers["content-type"]?.hasPrefix("text/plain") == true)
        let escape = try await Self.fetch("\(server.bootURL)/files/%2e%2e/etc", in: directory)
        #expect(escape.status == 403 && String(decoding: escape.body, as: UTF8.self).contains("\"code\":\"access_violation\""))

        // Six at once, each byte-identical.
        let copies = try await withThrowingTaskGroup(of: Data.self) { group in
            for _ in 0..<6 { group.addTask { try await Self.fetch(url, in: directory).body } }
            return try await group.reduce(into: [Data]()) { $0.append($1) }
        }
        #expect(copies.count == 6 && copies.allSatisfy { $0 == image })

        // Keep-alive: curl reuses the connection after a file response, for a file and for a router route.
        let reuse = try await AnvilServer.run(
            "/usr/bin/curl",
            [
                "--silent", "--max-time", "60", "--output", "/dev/null", "--output", "/dev/null", "--output", "/dev/null",
                "--write-out", "%{http_code}:%{num_connects} ", url, "\(server.bootURL)/files/small.ipxe",
                "\(server.bootURL)/healthz",
            ])
        #expect(reuse.stdout == "200:1 200:0 200:0 ", "curl: \(reuse.stdout) \(reuse.stderr)")

        // Pipelining: requests sent together are answered in order, whoever answers each.
        let small = "#!ipxe\necho small\n"
        let pipeline = try RawHTTPConnection(port: try #require(Self.port(server.bootURL)))
        defer { pipeline.close() }
        try pipeline.send(
            "GET /files/small.ipxe HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                + "GET /files/small.ipxe HTTP/1.1\r\nHost: t\r\nRange: bytes=0-5\r\n\r\nHEAD /files/nothing HTTP/1.1\r\nHost: t\r\n\r\n"
                + "GET /files/small.ipxe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let pipelined = try pipeline.receiveUntilClosed()
        let responses = RawHTTPConnection.split(pipelined, methods: ["GET", "GET", "GET", "HEAD", "GET"])
        #expect(responses.map(\.status) == [200, 200, 206, 404, 200], "\(String(decoding: pipelined, as: UTF8.self))")
        if responses.count == 5 {
            #expect(responses[0].body == Data(small.utf8) && responses[2].body == Data(small.utf8.prefix(6)))
            #expect(responses[4].body == Data(small.utf8) && responses[4].headers["connection"] == "close")
            #expect(responses[3].body.isEmpty && responses[3].headers["content-type"] == "application/json")
        }

        // A client that goes away mid-download: the server closes the file and keeps serving.
        let pid = try #require(server.pid)
        let realImagePath = URL(fileURLWithPath: imagePath).resolvingSymlinksInPath().path
        for _ in 0..<3 {
            let connection = try RawHTTPConnection(port: try #require(Self.port(server.bootURL)))
            try connection.send("GET /files/images/disk.img HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try connection.receive(atLeast: 1 << 20).count >= 1 << 20)
            // The client stopped reading: the transfer is in flight, the file open.
            #expect(Self.descriptors(of: pid, pointingAt: realImagePath) == 1)
            connection.close()
        }
        var open = Self.descriptors(of: pid, pointingAt: realImagePath)
        let deadline = ContinuousClock.now + .seconds(20)
        while open > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            open = Self.descriptors(of: pid, pointingAt: realImagePath)
        }
        #expect(open == 0, "the server still holds \(open) descriptors of the image after its clients left")
        let after = try await Self.fetch(url, in: directory)
        #expect(after.status == 200 && after.body == image)
        #expect(Self.descriptors(of: pid, pointingAt: realImagePath) == 0)

        // /files requests are counted with the router's request metrics.
        let metrics = try await Self.fetch("\(server.bootURL)/metrics", in: directory)
        let exposition = String(decoding: metrics.body, as: UTF8.self)
        #expect(
            exposition.contains("http_route=\"/files/**\"") && exposition.contains("http_response_status_code=\"206\""),
            "\(exposition.prefix(2000))")
    }

    static func port(_ url: String) -> UInt16? { url.split(separator: ":").last.flatMap { UInt16($0) } }

    /// How many of a process's descriptors are open on `path`.
    static func descriptors(of pid: Int32, pointingAt path: String) -> Int {
        let directory = "/proc/\(pid)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + $0)) == path }.count
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

/// A plain TCP client on 127.0.0.1 for what curl will not do: pipelining, and hanging up mid-response.
final class RawHTTPConnection {
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    private var descriptor: CInt

    init(port: UInt16) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RawHTTPError("socket: errno \(errno)") }
        // Every read is bounded: a server that stops answering fails the test instead of hanging it.
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(descriptor)
            throw RawHTTPError("connect to 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { close() }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let result = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard result > 0 else { throw RawHTTPError("send: errno \(errno)") }
            sent += result
        }
    }

    /// Reads until at least `count` bytes arrived.
    func receive(atLeast count: Int) throws -> Data {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while received.count < count {
            let result = recv(descriptor, &buffer, buffer.count, 0)
            guard result > 0 else {
                throw RawHTTPError("recv after \(received.count) bytes: \(result == 0 ? "closed" : "errno \(errno)")")
            }
            received.append(contentsOf: buffer[..<result])
        }
        return received
    }

    /// Reads until the server closes (at most 64 MiB).
    func receiveUntilClosed() throws -> Data {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while received.count < 64 << 20 {
            let result = recv(descriptor, &buffer, buffer.count, 0)
            if result == 0 { return received }
            guard result > 0 else { throw RawHTTPError("recv after \(received.count) bytes: errno \(errno)") }
            received.append(contentsOf: buffer[..<result])
        }
        throw RawHTTPError("more than 64 MiB without the server closing")
    }

    /// Splits back-to-back responses, framed by Content-Length, to requests made with `methods` in order.
    static func split(_ data: Data, methods: [String]) -> [Response] {
        var responses: [Response] = []
        var rest = data[...]
        let separator = Data("\r\n\r\n".utf8)
        while let end = rest.range(of: separator) {
            let headerText = String(decoding: rest[..<end.lowerBound], as: UTF8.self)
            let lines = headerText.components(separatedBy: "\r\n")
            let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            // A HEAD response has a Content-Length and no body.
            let isHead = responses.count < methods.count && methods[responses.count] == "HEAD"
            let length = isHead ? 0 : Int(headers["content-length"] ?? "0") ?? 0
            let bodyEnd = min(rest.endIndex, end.upperBound + length)
            responses.append(Response(status: status, headers: headers, body: Data(rest[end.upperBound..<bodyEnd])))
            rest = rest[bodyEnd...]
        }
        return responses
    }
}

struct RawHTTPError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
