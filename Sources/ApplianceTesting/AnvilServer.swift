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
    private var process: Process?

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

    /// The `anvil` executable: $ANVIL_BINARY, else the one built next to the test bundle.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["ANVIL_BINARY"] { return path }
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
    public var pid: Int32? { process?.processIdentifier }

    /// Starts the server and waits (up to `timeout`, a liveness bound) until both planes listen.
    public func start(extraArguments: [String] = [], timeout: Duration = .seconds(120)) async throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let listenersPath = dataDirectory + "/listeners.json"
        try? FileManager.default.removeItem(atPath: listenersPath)
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        let process = Process()
        // `ip netns exec` execs the server in place, so the PID stays the server's.
        let command = (namespace?.wrap([Self.binary]) ?? [Self.binary]) + [
            "serve", "--data-dir", dataDirectory, "--content-dir", contentDirectory,
            "--admin-listen", "127.0.0.1:0", "--boot-listen", "127.0.0.1:0", "--tftp-listen", "127.0.0.1:0",
        ] + extraArguments
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        // A later `--tftp-listen` overrides the default above; `off` means no TFTP address to wait for.
        let expectsTFTP = extraArguments.lastIndex(of: "--tftp-listen").map { extraArguments.dropFirst($0 + 1).first != "off" } ?? true
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()  // the server has its own copy
        self.process = process
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: listenersPath),
                let planes = try? JSONDecoder().decode([String: String].self, from: data),
                let admin = planes["admin"], let boot = planes["boot"], !expectsTFTP || planes["tftp"] != nil
            {
                adminURL = admin
                bootURL = boot
                tftpURL = planes["tftp"] ?? ""
                return
            }
            guard process.isRunning else { throw AnvilServerError("anvil serve exited with \(process.terminationStatus):\n\(self.log)") }
            try await Task.sleep(for: .milliseconds(100))
        }
        stopNow()
        throw AnvilServerError("anvil serve did not listen within \(timeout):\n\(self.log)")
    }

    /// SIGTERM, then waits for the exit (bounded); returns the exit status.
    @discardableResult
    public func stop(timeout: Duration = .seconds(60)) async -> Int32? {
        guard let process else { return nil }
        if process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { stopNow() }
        self.process = nil
        return process.isRunning ? nil : process.terminationStatus
    }

    /// kill -9: the crash the inventory must survive.
    public func kill9() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    private func stopNow() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
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
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) async throws -> CLIResult {
        let scratch = try TemporaryDirectory(prefix: "anvil-cli")
        defer { scratch.remove() }
        FileManager.default.createFile(atPath: scratch.file("out"), contents: nil)
        FileManager.default.createFile(atPath: scratch.file("err"), contents: nil)
        FileManager.default.createFile(atPath: scratch.file("in"), contents: Data((stdin ?? "").utf8))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        // Closed explicitly: Foundation keeps them open otherwise, and past 1024 descriptors its
        // select()-based child monitoring stops noticing exits.
        let handles = [
            try FileHandle(forWritingTo: scratch.url.appendingPathComponent("out")),
            try FileHandle(forWritingTo: scratch.url.appendingPathComponent("err")),
            try FileHandle(forReadingFrom: scratch.url.appendingPathComponent("in")),
        ]
        defer { for handle in handles { try? handle.close() } }
        process.standardOutput = handles[0]
        process.standardError = handles[1]
        process.standardInput = handles[2]
        try process.run()
        let deadline = ContinuousClock.now + .seconds(120)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return CLIResult(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: scratch.file("out"), encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: scratch.file("err"), encoding: .utf8)) ?? "")
    }
}

public struct AnvilServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
