import Foundation

/// A real `anvil serve` process for end-to-end tests, plus a way to run the real CLI against it.
/// Listens on loopback with ports chosen by the kernel; output goes to `serve.log` in its data directory.
public final class AnvilServer: @unchecked Sendable {
    public let dataDirectory: String
    public let contentDirectory: String
    public private(set) var adminURL = ""
    public private(set) var bootURL = ""
    /// `tftp://127.0.0.1:<port>`; empty when started with `--tftp-listen off`.
    public private(set) var tftpURL = ""
    private var process: ChildProcess?

    /// Runs the server inside this namespace when set (its loopback is then the server's own).
    public let namespace: NetworkNamespace?

    public init(dataDirectory: String, contentDirectory: String = AnvilServer.repositoryRoot, namespace: NetworkNamespace? = nil) {
        self.dataDirectory = dataDirectory
        self.contentDirectory = contentDirectory
        self.namespace = namespace
    }

    /// The source tree, for the shipped bootenvs/ and templates/.
    public static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The `anvil` executable: $ANVIL_BINARY, else this process when it is `anvil` (the lab), else
    /// the one built next to the test bundle.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["ANVIL_BINARY"] { return path }
        if let running = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
            URL(fileURLWithPath: running).lastPathComponent == "anvil"
        {
            return running
        }
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("anvil").path,
            Bundle.main.bundleURL.appendingPathComponent("anvil").path,
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("anvil").path,
            repositoryRoot + "/.build/debug/anvil",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }

    public var logPath: String { dataDirectory + "/serve.log" }
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    public var pid: Int32? { process?.pid }

    /// Starts the server and waits (up to `timeout`, a liveness bound) until both planes listen.
    /// `detached`: in a session of its own, to outlive the caller (see `ChildProcess.spawn`).
    public func start(extraArguments: [String] = [], timeout: Duration = .seconds(120), detached: Bool = false) async throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let listenersPath = dataDirectory + "/listeners.json"
        try? FileManager.default.removeItem(atPath: listenersPath)
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        // `ip netns exec` execs the server in place, so the PID stays the server's.
        let command = (namespace?.wrap([Self.binary]) ?? [Self.binary]) + [
            "serve", "--data-dir", dataDirectory, "--content-dir", contentDirectory,
            "--admin-listen", "127.0.0.1:0", "--boot-listen", "127.0.0.1:0", "--tftp-listen", "127.0.0.1:0",
        ] + extraArguments
        // A later `--tftp-listen` overrides the default above; `off` means no TFTP address to wait for.
        let expectsTFTP = extraArguments.lastIndex(of: "--tftp-listen").map { extraArguments.dropFirst($0 + 1).first != "off" } ?? true
        let expectsDHCP = extraArguments.contains("--dhcp-interface")
        let process = try ChildProcess.spawn(command, stdout: logPath, stderr: logPath, appendOutput: true, detached: detached)
        self.process = process
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: listenersPath),
                let planes = try? JSONDecoder().decode([String: String].self, from: data),
                let admin = planes["admin"], let boot = planes["boot"], !expectsTFTP || planes["tftp"] != nil,
                !expectsDHCP || planes["dhcp"] != nil
            {
                adminURL = admin
                bootURL = boot
                tftpURL = planes["tftp"] ?? ""
                return
            }
            if let status = process.status { throw AnvilServerError("anvil serve exited with \(status):\n\(self.log)") }
            try await Task.sleep(for: .milliseconds(100))
        }
        stopNow()
        throw AnvilServerError("anvil serve did not listen within \(timeout):\n\(self.log)")
    }

    /// SIGTERM, then waits for the exit (bounded); returns the exit status.
    @discardableResult
    public func stop(timeout: Duration = .seconds(60)) async -> Int32? {
        guard let process else { return nil }
        process.signal(SIGTERM)
        let status = await process.wait(timeout: timeout)
        if status == nil { process.killAndWait() }
        self.process = nil
        return status
    }

    /// `stop()` for `defer`, which cannot await: SIGTERM, a bounded wait, then SIGKILL.
    public func stopBlocking(timeout: Duration = .seconds(60)) {
        guard let process else { return }
        process.signal(SIGTERM)
        if process.waitBlocking(timeout: timeout) == nil { process.killAndWait() }
        self.process = nil
    }

    /// kill -9: the crash the inventory must survive.
    public func kill9() {
        process?.killAndWait()
        process = nil
    }

    private func stopNow() {
        process?.killAndWait()
    }

    public struct CLIResult: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `anvil <arguments> --data-dir <this server's data dir>` and collects its output.
    public func cli(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) async throws -> CLIResult {
        try await Self.run(Self.binary, arguments + ["--data-dir", dataDirectory], environment: environment, stdin: stdin)
    }

    /// Runs a program to completion, reading its output through temporary files (no pipe deadlocks).
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil, timeout: Duration = .seconds(120)
    ) async throws -> CLIResult {
        let scratch = try TemporaryDirectory(prefix: "anvil-cli")
        defer { scratch.remove() }
        FileManager.default.createFile(atPath: scratch.file("out"), contents: nil)
        FileManager.default.createFile(atPath: scratch.file("err"), contents: nil)
        FileManager.default.createFile(atPath: scratch.file("in"), contents: Data((stdin ?? "").utf8))
        let process = try ChildProcess.spawn(
            [executable] + arguments, environment: environment, stdin: scratch.file("in"), stdout: scratch.file("out"),
            stderr: scratch.file("err"))
        if await process.wait(timeout: timeout) == nil { process.killAndWait() }
        return CLIResult(
            status: process.status ?? -1,
            stdout: (try? String(contentsOfFile: scratch.file("out"), encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: scratch.file("err"), encoding: .utf8)) ?? "")
    }
}

public struct AnvilServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
