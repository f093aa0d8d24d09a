import Foundation
import NetworkPrimitives

/// How Anvil serves DHCP on a subnet.
public enum SubnetMode: String, Codable, Sendable, CaseIterable {
    /// Anvil hands out addresses and boot information.
    case full
    /// Another server hands out addresses; Anvil adds boot information for PXE clients only.
    case proxy
}

/// A network Anvil serves DHCP on.
public struct Subnet: InventoryObject, NamedObject {
    public static let kind = ObjectKind.subnet

    public var name: String
    public var description: String
    public var mode: SubnetMode
    public var network: IPv4Network
    public var rangeStart: IPv4Address?
    public var rangeEnd: IPv4Address?
    public var router: IPv4Address?
    public var dnsServers: [IPv4Address]
    public var ntpServers: [IPv4Address]
    public var domain: String?
    public var leaseSeconds: Int
    /// The TFTP/HTTP server machines are sent to; Anvil's own address when absent.
    public var nextServer: IPv4Address?
    /// Relay agents (giaddr) allowed to forward requests for this subnet.
    public var relayAddresses: [IPv4Address]

    public init(
        name: String, description: String = "", mode: SubnetMode = .full, network: IPv4Network,
        rangeStart: IPv4Address? = nil, rangeEnd: IPv4Address? = nil, router: IPv4Address? = nil,
        dnsServers: [IPv4Address] = [], ntpServers: [IPv4Address] = [], domain: String? = nil,
        leaseSeconds: Int = 3600, nextServer: IPv4Address? = nil, relayAddresses: [IPv4Address] = []
    ) {
        self.name = name
        self.description = description
        self.mode = mode
        self.network = network
        self.rangeStart = rangeStart
        self.rangeEnd = rangeEnd
        self.router = router
        self.dnsServers = dnsServers
        self.ntpServers = ntpServers
        self.domain = domain
        self.leaseSeconds = leaseSeconds
        self.nextServer = nextServer
        self.relayAddresses = relayAddresses
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, mode, network, rangeStart, rangeEnd, router, dnsServers, ntpServers, domain
        case leaseSeconds, nextServer, relayAddresses
    }

    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public static var filterFields: [String: FilterField] { ["mode": .equals(path: "$.mode")] }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        mode = try c.decode(.mode, default: .full)
        network = try c.decode(IPv4Network.self, forKey: .network)
        rangeStart = try c.decodeIfPresent(IPv4Address.self, forKey: .rangeStart)
        rangeEnd = try c.decodeIfPresent(IPv4Address.self, forKey: .rangeEnd)
        router = try c.decodeIfPresent(IPv4Address.self, forKey: .router)
        dnsServers = try c.decode(.dnsServers, default: [])
        ntpServers = try c.decode(.ntpServers, default: [])
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
        leaseSeconds = try c.decode(.leaseSeconds, default: 3600)
        nextServer = try c.decodeIfPresent(IPv4Address.self, forKey: .nextServer)
        relayAddresses = try c.decode(.relayAddresses, default: [])
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        report.check(leaseSeconds >= 60, "leaseSeconds", "must be at least 60, got \(leaseSeconds)")
        switch (mode, rangeStart, rangeEnd) {
        case (.full, let start?, let end?):
            report.check(network.contains(start), "rangeStart", "\(start) is outside \(network)")
            report.check(network.contains(end), "rangeEnd", "\(end) is outside \(network)")
            report.check(start <= end, "rangeEnd", "\(end) comes before rangeStart \(start)")
            report.check(start != network.address && end != network.broadcast, "rangeStart",
                "the range must not include the network or broadcast address")
        case (.full, _, _):
            report.add(rangeStart == nil ? "rangeStart" : "rangeEnd", "a full-mode subnet needs rangeStart and rangeEnd")
        case (.proxy, _, _):
            report.check(rangeStart == nil && rangeEnd == nil, "rangeStart", "a proxy-mode subnet hands out no addresses")
        }
        if let router { report.check(network.contains(router), "router", "\(router) is outside \(network)") }
        if let domain { report.check(!domain.isEmpty && !domain.contains(" "), "domain", "'\(domain)' is not a domain name") }
        return report.problems
    }

    /// Whether an address can be handed out from the dynamic range.
    public func rangeContains(_ address: IPv4Address) -> Bool {
        guard let rangeStart, let rangeEnd else { return false }
        return rangeStart <= address && address <= rangeEnd
    }
}

/// A fixed address for a MAC.
public struct Reservation: InventoryObject {
    public static let kind = ObjectKind.reservation

    public var mac: MACAddress
    public var address: IPv4Address
    public var subnet: String
    public var hostname: String?

    public init(mac: MACAddress, address: IPv4Address, subnet: String, hostname: String? = nil) {
        self.mac = mac
        self.address = address
        self.subnet = subnet
        self.hostname = hostname
    }

    public var key: String { mac.description }

    enum CodingKeys: String, CodingKey, CaseIterable { case mac, address, subnet, hostname }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public static var filterFields: [String: FilterField] { ["subnet": .equals(path: "$.subnet")] }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(subnet, field: "subnet")
        if let hostname { report.checkName(hostname, field: "hostname") }
        return report.problems
    }

    public var references: [ObjectReference] { [ObjectReference(field: "subnet", kind: .subnet, key: subnet)] }
}

public enum LeaseState: String, Codable, Sendable, CaseIterable {
    case offered, bound, released, expired, declined
}

/// An address handed to a client by the DHCP server. Written by the DHCP service only.
public struct Lease: InventoryObject {
    public static let kind = ObjectKind.lease

    public var address: IPv4Address
    public var mac: MACAddress
    public var subnet: String
    public var state: LeaseState
    public var expiresAt: Date
    public var hostname: String?

    public init(address: IPv4Address, mac: MACAddress, subnet: String, state: LeaseState, expiresAt: Date, hostname: String? = nil) {
        self.address = address
        self.mac = mac
        self.subnet = subnet
        self.state = state
        self.expiresAt = expiresAt
        self.hostname = hostname
    }

    public var key: String { address.description }

    enum CodingKeys: String, CodingKey, CaseIterable { case address, mac, subnet, state, expiresAt, hostname }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public static var filterFields: [String: FilterField] {
        ["mac": .equals(path: "$.mac"), "subnet": .equals(path: "$.subnet"), "state": .equals(path: "$.state")]
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(subnet, field: "subnet")
        return report.problems
    }
}
