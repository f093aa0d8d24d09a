import Foundation

/// Real DHCP client programs, each run with a hook script of the test's own. Their default scripts
/// rewrite the host's /etc/resolv.conf even inside a network namespace (the mount namespace is
/// shared); this one only records events and sets the address on the client's interface.
public enum DHCPClient: String, CaseIterable, Sendable, CustomStringConvertible {
    case dhclient
    case udhcpc
    case dhcpcd

    public var description: String { rawValue }

    public var executable: String { "/usr/sbin/\(rawValue)" }

    /// Writes the hook script into `directory`; it appends `event=… address=… bootfile=…` lines to `events`.
    public static func writeHook(in directory: TemporaryDirectory, events: String) throws -> String {
        let path = directory.file("dhcp-hook.sh")
        let script = """
            #!/bin/sh
            # dhclient and dhcpcd set $reason; udhcpc passes the event as $1.
            event="${reason:-$1}"
            address="${new_ip_address:-$ip}"
            echo "event=$event address=$address bootfile=${new_filename:-$boot_file} server=${new_dhcp_server_identifier:-$serverid}" >> \(events)
            case "$event" in
                bound|renew|BOUND|RENEW|REBOOT|REBIND) [ -n "$address" ] && ip addr replace "$address/24" dev "$interface" ;;
                deconfig|RELEASE|EXPIRE|STOP|FAIL) ip -4 addr flush dev "$interface" ;;
            esac
            exit 0

            """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    /// A client run: its process (for the long-running ones), files, and the events its hook saw.
    public final class Run: @unchecked Sendable {
        public let client: DHCPClient
        public let interface: String
        public let namespace: NetworkNamespace
        public let directory: TemporaryDirectory
        public let hook: String
        public let eventsFile: String
        var process: ChildProcess?

        init(client: DHCPClient, interface: String, namespace: NetworkNamespace, directory: TemporaryDirectory) throws {
            self.client = client
            self.interface = interface
            self.namespace = namespace
            self.directory = directory
            eventsFile = directory.file("\(client)-events")
            FileManager.default.createFile(atPath: eventsFile, contents: nil)
            hook = try DHCPClient.writeHook(in: directory, events: eventsFile)
        }

        public var events: [String] {
            ((try? String(contentsOfFile: eventsFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        public var log: String { (try? String(contentsOfFile: directory.file("\(client).log"), encoding: .utf8)) ?? "" }

        /// Waits (a liveness bound) until the hook has seen one of `events` after line `after`; returns that line.
        public func waitForEvent(_ names: Set<String>, after: Int = 0, timeout: Duration = .seconds(60)) async throws -> String {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let line = events.dropFirst(after).first(where: { line in names.contains(Self.field("event", of: line) ?? "") }) { return line }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw AnvilServerError("\(client) saw none of \(names.sorted()) within \(timeout); events: \(events)\nlog:\n\(log)")
        }

        public static func field(_ name: String, of line: String) -> String? {
            line.split(separator: " ").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }

        /// Starts the client in the background (foreground mode of the program, supervised here).
        func spawn(_ arguments: [String]) throws {
            process = try ChildProcess.spawn(
                namespace.wrap([client.executable] + arguments), stdout: directory.file("\(client).log"), stderr: directory.file("\(client).log"),
                appendOutput: true)
        }

        /// Runs the client program to completion inside the namespace.
        @discardableResult
        func runToEnd(_ arguments: [String]) async throws -> AnvilServer.CLIResult {
            let command = namespace.wrap([client.executable] + arguments)
            let result = try await AnvilServer.run(command[0], Array(command.dropFirst()))
            try? (log + result.stdout + result.stderr).write(toFile: directory.file("\(client).log"), atomically: true, encoding: .utf8)
            return result
        }

        /// Stops the background process, if any (SIGTERM, then SIGKILL after the bound). Blocking,
        /// so it can run in `defer`.
        public func stop() {
            guard let process else { return }
            process.signal(SIGTERM)
            if process.waitBlocking(timeout: .seconds(10)) == nil { process.killAndWait() }
            self.process = nil
        }

        /// Stops the client and removes what dhcpcd keeps in the host's /var/lib and /run despite the
        /// namespace. Blocking, so it can run in `defer`.
        public func cleanUp() {
            stop()
            guard client == .dhcpcd else { return }
            for directory in ["/var/lib/dhcpcd", "/run/dhcpcd"] {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.contains(interface) {
                    try? FileManager.default.removeItem(atPath: directory + "/" + name)
                }
            }
        }
    }

    /// Obtains a lease on `interface`, leaving the client running where the program needs that to renew later.
    public func obtain(on interface: String, in namespace: NetworkNamespace, directory: TemporaryDirectory, extraArguments: [String] = []) async throws -> Run {
        let run = try Run(client: self, interface: interface, namespace: namespace, directory: directory)
        switch self {
        case .dhclient:
            try run.spawn(["-d", "-1", "-v", "-sf", run.hook, "-lf", directory.file("dhclient.leases"), "-pf", directory.file("dhclient.pid")] + extraArguments + [interface])
        case .udhcpc:
            try run.spawn(["-i", interface, "-f", "-t", "10", "-T", "2", "-s", run.hook] + extraArguments)
        case .dhcpcd:
            let configuration = directory.file("dhcpcd.conf")
            try "# no hooks, no resolv.conf: the test's own script only\n".write(toFile: configuration, atomically: true, encoding: .utf8)
            try run.spawn(["-4", "-B", "-t", "30", "-f", configuration, "-c", run.hook] + extraArguments + [interface])
        }
        _ = try await run.waitForEvent(["bound", "BOUND"])
        return run
    }

    /// Asks the server to extend the lease, the way each program can be made to: udhcpc renews
    /// (unicast REQUEST, SIGUSR1), dhclient restarts from its lease file (INIT-REBOOT), dhcpcd rebinds.
    public func renew(_ run: Run) async throws -> String {
        let before = run.events.count
        switch self {
        case .udhcpc:
            run.process?.signal(SIGUSR1)
        case .dhclient:
            run.stop()
            try run.spawn(["-d", "-1", "-v", "-sf", run.hook, "-lf", run.directory.file("dhclient.leases"), "-pf", run.directory.file("dhclient.pid"), run.interface])
        case .dhcpcd:
            // Own configuration and hook here too: were the daemon gone, this would start a new one.
            try await run.runToEnd(["-4", "-n", "-f", run.directory.file("dhcpcd.conf"), "-c", run.hook, run.interface])
        }
        return try await run.waitForEvent(["renew", "RENEW", "REBOOT", "REBIND", "BOUND", "bound"], after: before)
    }

    /// Gives the lease back with a DHCPRELEASE and ends the client.
    public func release(_ run: Run) async throws {
        switch self {
        case .udhcpc:
            run.process?.signal(SIGUSR2)
            _ = try await run.waitForEvent(["deconfig"], after: max(0, run.events.count - 1))
            run.stop()
        case .dhclient:
            run.stop()
            try await run.runToEnd(["-r", "-v", "-sf", run.hook, "-lf", run.directory.file("dhclient.leases"), "-pf", run.directory.file("dhclient.pid"), run.interface])
        case .dhcpcd:
            try await run.runToEnd(["-4", "-k", "-f", run.directory.file("dhcpcd.conf"), "-c", run.hook, run.interface])
            if let process = run.process, await process.wait(timeout: .seconds(20)) == nil { run.stop() }
        }
    }
}
