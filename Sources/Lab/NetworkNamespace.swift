import Foundation

/// A network namespace a test creates for itself, with only its own loopback up: nothing in it is
/// linked to the host's namespace. Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN). Delete it in `defer`.
public struct NetworkNamespace: Sendable {
    public let name: String

    /// An existing namespace by name (one a lab's state file recorded, to delete it).
    public init(name: String) { self.name = name }

    /// Creates `<prefix>-<pid>-<random>` with `lo` up.
    public static func create(prefix: String = "anvil-test") async throws -> NetworkNamespace {
        guard getuid() == 0 else { throw AnvilServerError("network namespaces need root; run the tests as root (CI does)") }
        let namespace = NetworkNamespace(name: "\(prefix)-\(getpid())-\(UUID().uuidString.prefix(6).lowercased())")
        try await namespace.host(["ip", "netns", "add", namespace.name])
        do {
            try await namespace.run(["ip", "link", "set", "lo", "up"])
        } catch {
            namespace.delete()
            throw error
        }
        return namespace
    }

    /// The command line that runs `command` inside this namespace.
    public func wrap(_ command: [String]) -> [String] { ["/usr/sbin/ip", "netns", "exec", name] + command }

    /// Runs `command` inside the namespace; throws when it fails.
    @discardableResult
    public func run(_ command: [String]) async throws -> AnvilServer.CLIResult {
        try await host(wrap(command))
    }

    /// Removes the namespace (safe to call twice). Whatever still runs inside it was started by the
    /// test (daemons such as dhcpcd fork helpers the test never sees): those get SIGKILL first.
    /// Blocking, so it can run in `defer`: a cleanup left to a detached task is lost when the test
    /// process exits first, and the namespace would outlive the run.
    public func delete() {
        let pids = ChildProcess.runBlocking(["/usr/sbin/ip", "netns", "pids", name])
        for pid in pids.split(separator: "\n").compactMap({ pid_t($0.trimmingCharacters(in: .whitespaces)) }) where pid > 1 {
            kill(pid, SIGKILL)
        }
        _ = ChildProcess.runBlocking(["/usr/sbin/ip", "netns", "delete", name])
    }

    @discardableResult
    private func host(_ command: [String]) async throws -> AnvilServer.CLIResult {
        let executable = command[0].hasPrefix("/") ? command[0] : "/usr/sbin/" + command[0]
        let result = try await AnvilServer.run(executable, Array(command.dropFirst()))
        guard result.status == 0 else {
            throw AnvilServerError("\(command.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
        }
        return result
    }
}
