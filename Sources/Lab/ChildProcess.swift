import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A program started with posix_spawn and reaped with waitpid. Foundation's `Process` is not used:
/// its child monitoring select()s on descriptors and stops noticing exits once a busy test process
/// has descriptors numbered above 1024 (seen as hung tests).
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let exitStatus = Mutex<Int32?>(nil)

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `command` (an absolute path first) with stdin, stdout and stderr opened from files.
    /// `detached` starts it in a session of its own, so it outlives the caller and its terminal
    /// (`anvil lab up` exits after setup and `lab down` stops the children by PID).
    public static func spawn(
        _ command: [String], environment: [String: String] = [:], stdin: String = "/dev/null", stdout: String, stderr: String,
        appendOutput: Bool = false, detached: Bool = false
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let outputFlags = O_WRONLY | O_CREAT | (appendOutput ? O_APPEND : O_TRUNC)
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, outputFlags, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, outputFlags, 0o644)
        let merged = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let argv = command.map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // The test process's threads block signals (and ignore SIGPIPE); a child inheriting that
        // would never see the SIGUSR1/SIGTERM a test sends it. Start it with an empty mask and
        // default dispositions.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        // POSIX_SPAWN_SETSID (glibc 2.26+) is a macro Swift does not import.
        let setsid: Int32 = detached ? 0x80 : 0
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsid))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
        guard result == 0 else { throw AnvilServerError("cannot start \(command[0]): \(String(cString: strerror(result)))") }
        return ChildProcess(pid: pid)
    }

    /// The exit status (128 + signal when killed), or nil while it runs. Reaps the child once.
    public var status: Int32? {
        exitStatus.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            let low = raw & 0x7f
            status = low == 0 ? (raw >> 8) & 0xff : 128 + low
            return status
        }
    }

    public var isRunning: Bool { status == nil }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits up to `timeout` (a liveness bound); returns the status, or nil if it still runs.
    public func wait(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status { return status }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return status
    }

    /// `wait(timeout:)` for cleanup in `defer`, which cannot await: blocks the calling thread.
    public func waitBlocking(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status { return status }
            usleep(10_000)
        }
        return status
    }

    /// Runs `command` to completion, blocking (bounded), and returns its standard output.
    public static func runBlocking(_ command: [String], timeout: Duration = .seconds(30)) -> String {
        let output = NSTemporaryDirectory() + "anvil-run-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: output) }
        guard let process = try? spawn(command, stdout: output, stderr: "/dev/null") else { return "" }
        if process.waitBlocking(timeout: timeout) == nil { process.killAndWait() }
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }

    /// SIGKILL and reap: for cleanup paths.
    public func killAndWait() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        var raw: Int32 = 0
        _ = waitpid(pid, &raw, 0)
        exitStatus.withLock { $0 = 128 + SIGKILL }
    }
}
