import Foundation

/// Two namespaces of the test's own joined by a veth pair: `server` runs `anvil serve` with DHCP
/// on `srv0` (10.77.0.1/24), `clients` holds the client end. Nothing links to the host's namespace.
public final class DHCPLab: @unchecked Sendable {
    public static let serverAddress = "10.77.0.1"
    public static let serverInterface = "srv0"

    public let directory: TemporaryDirectory
    public let server: NetworkNamespace
    public let clients: NetworkNamespace
    /// Unique per lab: dhcpcd names its control socket in the host's /run after the interface.
    public let clientInterface: String
    public let anvil: AnvilServer
    /// Anvil in a session of its own, to outlive the process that built the lab (`anvil lab up`).
    public let detached: Bool

    private init(
        directory: TemporaryDirectory, server: NetworkNamespace, clients: NetworkNamespace, clientInterface: String,
        contentDirectory: String, detached: Bool
    ) {
        self.directory = directory
        self.server = server
        self.clients = clients
        self.clientInterface = clientInterface
        self.detached = detached
        anvil = AnvilServer(dataDirectory: directory.file("data"), contentDirectory: contentDirectory, namespace: server)
    }

    /// Builds the namespaces and starts Anvil with DHCP on `srv0`. `prepare` adds to the topology
    /// before Anvil starts (interfaces Anvil serves must exist by then). `directory` and
    /// `namespacePrefix` default to a fresh temporary directory and test names; the lab chooses its own.
    public static func start(
        extraArguments: [String] = [], directory: TemporaryDirectory? = nil, namespacePrefix: String = "anvil-test",
        contentDirectory: String = AnvilServer.repositoryRoot, detached: Bool = false,
        prepare: @Sendable (DHCPLab) async throws -> Void = { _ in }
    ) async throws -> DHCPLab {
        let directory = try directory ?? TemporaryDirectory(prefix: "anvil-dhcp")
        let server = try await NetworkNamespace.create(prefix: namespacePrefix)
        let clients: NetworkNamespace
        do {
            clients = try await NetworkNamespace.create(prefix: namespacePrefix)
        } catch {
            server.delete()
            throw error
        }
        let lab = DHCPLab(
            directory: directory, server: server, clients: clients,
            clientInterface: "c" + UUID().uuidString.prefix(8).lowercased(), contentDirectory: contentDirectory,
            detached: detached)
        do {
            try await server.run([
                "ip", "link", "add", serverInterface, "type", "veth", "peer", "name", lab.clientInterface, "netns", clients.name,
            ])
            try await server.run(["ip", "addr", "add", "\(serverAddress)/24", "dev", serverInterface])
            try await server.run(["ip", "link", "set", serverInterface, "up"])
            try await clients.run(["ip", "link", "set", lab.clientInterface, "up"])
            try await prepare(lab)
            try await lab.startAnvil(extraArguments: extraArguments)
        } catch {
            lab.stop()
            throw error
        }
        return lab
    }

    /// A lab whose clients namespace is a rack: a bridge joining the server's link and one tap per
    /// QEMU machine. TFTP listens on the provisioning link for firmware that fetches its loader that way.
    public static func rack(
        taps: [String] = ["tap0"], extraArguments: [String] = [], directory: TemporaryDirectory? = nil,
        namespacePrefix: String = "anvil-test", contentDirectory: String = AnvilServer.repositoryRoot, detached: Bool = false,
        prepare: @Sendable (DHCPLab) async throws -> Void = { _ in }
    ) async throws -> DHCPLab {
        try await start(
            extraArguments: ["--tftp-listen", "0.0.0.0:69"] + extraArguments, directory: directory,
            namespacePrefix: namespacePrefix, contentDirectory: contentDirectory, detached: detached
        ) { lab in
            try await lab.clients.run(["ip", "link", "add", "br0", "type", "bridge"])
            try await lab.clients.run(["ip", "link", "set", lab.clientInterface, "master", "br0"])
            for tap in taps {
                try await lab.clients.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
                try await lab.clients.run(["ip", "link", "set", tap, "master", "br0"])
                try await lab.clients.run(["ip", "link", "set", tap, "up"])
            }
            try await lab.clients.run(["ip", "link", "set", "br0", "up"])
            try await prepare(lab)
        }
    }

    public func startAnvil(extraArguments: [String] = []) async throws {
        try await anvil.start(
            extraArguments: ["--boot-listen", "0.0.0.0:8080", "--dhcp-interface", Self.serverInterface] + extraArguments,
            detached: detached)
    }

    /// Runs the `anvil` CLI inside the server namespace against this lab's server.
    @discardableResult
    public func cli(_ arguments: [String]) async throws -> AnvilServer.CLIResult {
        try await server.run([AnvilServer.binary] + arguments + ["--data-dir", anvil.dataDirectory])
    }

    /// Creates the lab's full-mode subnet (range .100–.199), plus `extra` settings (`name=value`).
    public func createSubnet(name: String = "lab", extra: [String] = []) async throws {
        let settings =
            [
                "name=\(name)", "network=10.77.0.0/24", "rangeStart=10.77.0.100", "rangeEnd=10.77.0.199", "router=10.77.0.1",
                "dnsServers=[\"10.77.0.53\"]", "domain=lab.test",
            ] + extra
        try await cli(["subnets", "create"] + settings.flatMap { ["--set", $0] })
    }

    /// The server's leases, decoded from `anvil leases list --json`.
    public func leases() async throws -> [[String: Any]] {
        let output = try await cli(["leases", "list", "--json"]).stdout
        let parsed = try JSONSerialization.jsonObject(with: Data(output.utf8))
        if let items = parsed as? [[String: Any]] { return items }
        if let page = parsed as? [String: Any], let items = page["items"] as? [[String: Any]] { return items }
        throw AnvilServerError("unexpected leases output: \(output.prefix(500))")
    }

    /// A MAC address of an interface in one of the lab's namespaces.
    public func mac(of interface: String, in namespace: NetworkNamespace) async throws -> String {
        try await namespace.run(["cat", "/sys/class/net/\(interface)/address"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    /// Runs `anvil dhcp probe` from `interface` in `namespace`; returns the replies' dumps, one per reply.
    public func probe(
        from interface: String, in namespace: NetworkNamespace, _ arguments: [String] = [], wait: Double = 3
    ) async throws -> [String] {
        let command = namespace.wrap(
            [AnvilServer.binary, "dhcp", "probe", "--interface", interface, "--json", "--wait", "\(wait)"] + arguments)
        let result = try await AnvilServer.run(command[0], Array(command.dropFirst()))
        return result.stdout.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["dump"] as? String
        }
    }

    /// A counter's value from the metrics text (0 when absent), e.g. `anvil_dhcp_dropped_total{reason="truncated"}`.
    public func counter(_ series: String) async throws -> Double {
        let line = try await metrics().split(separator: "\n").first { $0.hasPrefix(series + " ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }

    /// The server's Prometheus metrics.
    public func metrics() async throws -> String {
        try await server.run(["curl", "--silent", "--max-time", "30", "http://127.0.0.1:8080/metrics"]).stdout
    }

    /// Stops Anvil and removes both namespaces and the directory; safe to call twice. Blocking, so
    /// it can run in `defer`.
    public func stop() {
        anvil.stopBlocking()
        clients.delete()
        server.delete()
        directory.remove()
    }
}
