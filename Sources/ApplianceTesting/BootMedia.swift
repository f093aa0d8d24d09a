import Crypto
import Foundation
import Lab

/// `python3 -m http.server` on 127.0.0.1 with a kernel-chosen port: a real HTTP/1.0 file server that
/// ignores Range requests (every GET gets the whole file with 200), which the import's restart path needs.
public final class PythonHTTPServer: @unchecked Sendable {
    public let root: String
    public let port: Int
    private let process: ChildProcess
    private let stdoutPath: String
    private let stderrPath: String

    public init(serving root: String, logDirectory: String, timeout: Duration = .seconds(20)) async throws {
        self.root = root
        stdoutPath = logDirectory + "/http-server.out"
        stderrPath = logDirectory + "/http-server.log"
        process = try ChildProcess.spawn(
            ["/usr/bin/python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, "0"], stdout: stdoutPath,
            stderr: stderrPath)
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let deadline = ContinuousClock.now + timeout
        var found: Int?
        while ContinuousClock.now < deadline, found == nil {
            let text = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            if let match = text.firstMatch(of: /port (\d+)/) { found = Int(match.output.1) }
            if found == nil {
                if let status = process.status { throw AnvilServerError("python3 -m http.server exited with \(status): \(text)") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        guard let found else {
            process.killAndWait()
            throw AnvilServerError("python3 -m http.server did not report its port within \(timeout)")
        }
        port = found
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The GET request lines the server logged, e.g. `GET /test.iso HTTP/1.1" 200`.
    public var requests: [String] {
        let log = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { line in
            line.firstMatch(of: /"(GET [^"]*)" (\d+)/).map { "\($0.output.1) \($0.output.2)" }
        }
    }

    public func stop() { process.killAndWait() }
}

/// Files for boot-media import tests: random payloads, and archives built by real tools.
public enum BootMediaFixtures {
    public static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 8)
        while bytes.count < count { withUnsafeBytes(of: generator.next()) { bytes += $0 } }
        return Array(bytes.prefix(count))
    }

    public static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    public static func sha256(file path: String) throws -> String {
        sha256(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// Writes `files` (relative path → bytes) under `directory`.
    public static func write(_ files: [String: [UInt8]], under directory: String) throws {
        for (path, bytes) in files {
            let url = URL(fileURLWithPath: directory).appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
    }

    /// An ISO 9660 image (Rock Ridge and Joliet) of `directory`, made with xorriso.
    public static func makeISO(of directory: String, at path: String) async throws {
        try await run(["/usr/bin/xorriso", "-as", "mkisofs", "-quiet", "-o", path, "-R", "-J", directory])
    }

    /// A gzip-compressed tar of `directory`'s contents; members are named `./casper/vmlinuz` and so on.
    public static func makeTarGz(of directory: String, at path: String) async throws {
        try await run(["/usr/bin/tar", "-czf", path, "-C", directory, "."])
    }

    static func run(_ command: [String]) async throws {
        let scratch = try TemporaryDirectory(prefix: "anvil-fixture-tool")
        defer { scratch.remove() }
        let process = try ChildProcess.spawn(command, stdout: scratch.file("out"), stderr: scratch.file("err"))
        guard let status = await process.wait(timeout: .seconds(60)) else {
            process.killAndWait()
            throw AnvilServerError("\(command[0]) did not finish in 60 s")
        }
        guard status == 0 else {
            let errors = (try? String(contentsOfFile: scratch.file("err"), encoding: .utf8)) ?? ""
            throw AnvilServerError("\(command.joined(separator: " ")) exited with \(status): \(errors)")
        }
    }
}
