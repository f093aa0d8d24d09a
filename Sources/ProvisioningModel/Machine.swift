import Foundation
import NetworkPrimitives

/// A physical (or cloud) machine Anvil provisions.
public struct Machine: InventoryObject {
    public static let kind = ObjectKind.machine

    /// Anvil's own identity for the machine; stable across NIC swaps and reimages.
    public var id: ObjectID
    public var name: String
    public var description: String
    public var state: MachineState
    public var architecture: Architecture
    /// The boot environment its next network boot gets.
    public var bootEnv: String
    public var workflow: String?
    /// How far the machine is through `workflow` (nil until the engine starts it).
    public var progress: WorkflowProgress?
    /// Profiles in priority order (first wins) for param resolution.
    public var profiles: [String]
    public var params: [String: JSONValue]
    public var facts: HardwareFacts
    public var interfaces: [NetworkInterface]
    public var bmc: BMCReference?

    public init(
        id: ObjectID = ObjectID(), name: String, description: String = "", state: MachineState = .discovered,
        architecture: Architecture = .amd64, bootEnv: String = "discovery", workflow: String? = nil,
        profiles: [String] = [], params: [String: JSONValue] = [:], facts: HardwareFacts = HardwareFacts(),
        interfaces: [NetworkInterface] = [], bmc: BMCReference? = nil
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.state = state
        self.architecture = architecture
        self.bootEnv = bootEnv
        self.workflow = workflow
        self.profiles = profiles
        self.params = params
        self.facts = facts
        self.interfaces = interfaces
        self.bmc = bmc
    }

    public var key: String { id.description }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, description, state, architecture, bootEnv, workflow, progress, profiles, params, facts, interfaces, bmc
    }

    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public static var filterFields: [String: FilterField] {
        [
            "name": .equals(path: "$.name"),
            "state": .equals(path: "$.state"),
            "arch": .equals(path: "$.architecture"),
            "bootenv": .equals(path: "$.bootEnv"),
            "workflow": .equals(path: "$.workflow"),
            "profile": .contains(path: "$.profiles"),
            "serial": .equals(path: "$.facts.systemSerial"),
            "uuid": .equals(path: "$.facts.systemUUID"),
            "mac": .machineMAC,
            "vendor": .equals(path: "$.facts.systemVendor"),
            "product": .equals(path: "$.facts.systemProduct"),
            "memory": .number(path: "$.facts.memoryBytes", bytes: true),
            "cpu.cores": .number(path: "$.facts.cpuCores", bytes: false),
            "cpu.threads": .number(path: "$.facts.cpuThreads", bytes: false),
            "cpu.sockets": .number(path: "$.facts.cpuSockets", bytes: false),
            "disk.count": .count(path: "$.facts.disks"),
            "nic.count": .count(path: "$.facts.nics"),
            "bmc": .equals(path: "$.facts.bmc.address"),
        ]
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(.id, default: ObjectID())
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        state = try c.decode(.state, default: .discovered)
        architecture = try c.decode(.architecture, default: .amd64)
        bootEnv = try c.decode(.bootEnv, default: "discovery")
        workflow = try c.decodeIfPresent(String.self, forKey: .workflow)
        progress = try c.decodeIfPresent(WorkflowProgress.self, forKey: .progress)
        profiles = try c.decode(.profiles, default: [])
        params = try c.decode(.params, default: [:])
        facts = try c.decode(.facts, default: HardwareFacts())
        interfaces = try c.decode(.interfaces, default: [])
        bmc = try c.decodeIfPresent(BMCReference.self, forKey: .bmc)
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        report.checkName(bootEnv, field: "bootEnv")
        if let workflow { report.checkName(workflow, field: "workflow") }
        report.checkNames(profiles, field: "profiles")
        var seen: Set<MACAddress> = []
        for (index, interface) in interfaces.enumerated() {
            report.check(seen.insert(interface.mac).inserted, "interfaces[\(index)].mac",
                "\(interface.mac) is listed twice")
        }
        report.check(interfaces.filter(\.boot).count <= 1, "interfaces", "at most one interface can be the boot interface")
        if let bmc { report.merge(bmc.validate(), under: "bmc") }
        report.merge(facts.validate(), under: "facts")
        return report.problems
    }

    public var references: [ObjectReference] {
        var references = [ObjectReference(field: "bootEnv", kind: .bootenv, key: bootEnv)]
        if let workflow { references.append(ObjectReference(field: "workflow", kind: .workflow, key: workflow)) }
        for (index, profile) in profiles.enumerated() {
            references.append(ObjectReference(field: "profiles[\(index)]", kind: .profile, key: profile))
        }
        return references
    }

    public var paramValues: [String: JSONValue] { params }

    public func validateChange(from old: Machine) -> [ValidationProblem] {
        var report = ValidationReport()
        report.check(old.state.canMove(to: state), "state",
            "a machine cannot move from \(old.state.rawValue) to \(state.rawValue) (allowed: \(old.state.allowedNextStates.map(\.rawValue).sorted().joined(separator: ", ")))")
        return report.problems
    }

    /// The MACs the machine answers to, for identity matching and DHCP.
    public var macAddresses: [MACAddress] { interfaces.map(\.mac) }
    /// The NIC it network-boots from: the one marked `boot`, else the first.
    public var bootMAC: MACAddress? { interfaces.first(where: \.boot)?.mac ?? interfaces.first?.mac }
}

/// One network interface of a machine.
public struct NetworkInterface: Codable, Sendable, Hashable {
    public var mac: MACAddress
    public var name: String?
    /// The interface the machine network-boots from.
    public var boot: Bool

    public init(mac: MACAddress, name: String? = nil, boot: Bool = false) {
        self.mac = mac
        self.name = name
        self.boot = boot
    }

    enum CodingKeys: String, CodingKey { case mac, name, boot }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mac = try c.decode(MACAddress.self, forKey: .mac)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        boot = try c.decode(.boot, default: false)
    }
}

/// Where a machine's BMC answers. Credentials are kept apart from the machine (they are secrets).
public struct BMCReference: Codable, Sendable, Hashable {
    public var address: String
    public var port: Int

    public init(address: String, port: Int = 623) {
        self.address = address
        self.port = port
    }

    enum CodingKeys: String, CodingKey { case address, port }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        address = try c.decode(String.self, forKey: .address)
        port = try c.decode(.port, default: 623)
    }

    func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.check(!address.isEmpty && !address.contains(where: \.isWhitespace), "address", "must be a host name or IP address")
        report.check((1...65535).contains(port), "port", "must be 1-65535, got \(port)")
        return report.problems
    }
}
