import BootPolicy
import DHCPWire
import NetworkPrimitives
import ProvisioningModel
import Testing

/// Every combination of firmware (architecture × user class × vendor class) and inventory state,
/// checked against the rules restated independently in `expectedAnswer`.
@Suite("Boot decision")
struct BootDecisionTests {
    /// What a client's DHCPDISCOVER says about its firmware.
    struct Client: Sendable, CustomTestStringConvertible {
        /// Option 93; `nil` when absent.
        var architecture: UInt16?
        /// Option 77, sent bare as iPXE does.
        var userClass: String?
        /// Option 60.
        var vendorClass: String?

        var discover: DHCPMessage {
            clientMessage(.discover) { message in
                if let architecture { message.options[.clientSystemArchitecture] = [UInt8(architecture >> 8), UInt8(architecture & 0xff)] }
                if let userClass { message.options.set(.userClass, string: userClass) }
                if let vendorClass { message.options.set(.vendorClassIdentifier, string: vendorClass) }
            }
        }

        var testDescription: String {
            "arch \(architecture.map(String.init) ?? "absent"), user class \(userClass ?? "none"), vendor class \(vendorClass ?? "none")"
        }
    }

    /// What the inventory knows of the client, with the site's policy for unknown machines.
    enum Machine: CaseIterable, Sendable, CustomTestStringConvertible {
        case unknownWithDiscovery, unknownWithIgnore, localDeployed, localReimageQueued, installing, retired

        var policy: UnknownMachinePolicy { self == .unknownWithIgnore ? .ignore : .discovery }

        var inventory: KnownMachine {
            switch self {
            case .unknownWithDiscovery, .unknownWithIgnore: .unknown
            case .localDeployed: .known(name: "node1", bootEnv: "local", state: .deployed)
            case .localReimageQueued: .known(name: "node1", bootEnv: "local", state: .reimageQueued)
            case .installing: .known(name: "node1", bootEnv: "debian-12-install", state: .deploying)
            case .retired: .known(name: "node1", bootEnv: "debian-12-install", state: .retired)
            }
        }

        var testDescription: String { "\(self)" }
    }

    /// 0x1234 is in no registry Anvil knows.
    static let architectures: [UInt16?] = [0, 7, 9, 11, 16, 19, nil, 0x1234]
    static let userClasses: [String?] = ["iPXE", nil]
    static let vendorClasses: [String?] = ["PXEClient:Arch:00000:UNDI:002001", "HTTPClient:Arch:00016", nil]

    static let clients: [Client] = architectures.flatMap { architecture in
        userClasses.flatMap { userClass in
            vendorClasses.map { Client(architecture: architecture, userClass: userClass, vendorClass: $0) }
        }
    }

    /// The boot rules written out once more, without `BootPolicy`.
    static func expectedAnswer(for client: Client, machine: Machine) -> BootDecision.Answer {
        let runsIPXE = client.userClass == "iPXE"
        let isPXE = client.vendorClass?.hasPrefix("PXEClient") ?? false
        let isHTTPBoot = client.vendorClass?.hasPrefix("HTTPClient") ?? false
        guard runsIPXE || isPXE || isHTTPBoot else { return .none }
        switch machine {
        case .unknownWithIgnore, .retired: return .none
        // Firmware falls through to the local disk; iPXE is handed the script, which boots the disk itself.
        case .localDeployed where !runsIPXE: return .none
        default: break
        }
        // iPXE is past the loader stage: giving it a loader again would loop.
        if runsIPXE { return .ipxeScript(url: Fixture.clientScriptURL) }
        if isHTTPBoot {
            switch client.architecture {
            case 16: return .http(url: "http://10.0.0.2:8080/files/ipxe.efi")
            case 19: return .http(url: "http://10.0.0.2:8080/files/arm64/ipxe.efi")
            default: return .none
            }
        }
        switch client.architecture {
        case 0, nil: return .tftp(file: "undionly.kpxe")  // old PXE ROMs omit option 93: BIOS
        case 7, 9: return .tftp(file: "ipxe.efi")
        case 11: return .tftp(file: "arm64/ipxe.efi")
        default: return .none
        }
    }

    @Test("answer for each client and machine", arguments: clients, Machine.allCases)
    func answer(client: Client, machine: Machine) throws {
        let facts = try DHCPClientFacts(message: client.discover)
        let policy = BootPolicy(unknownMachines: machine.policy)
        let decision = policy.decide(facts, machine: machine.inventory, bootBaseURL: Fixture.bootBaseURL)
        #expect(decision.answer == Self.expectedAnswer(for: client, machine: machine))
        #expect(!decision.reason.isEmpty)
    }

    /// Guards the table itself: a typo in `expectedAnswer` could make every row expect `.none`.
    @Test("the table exercises every kind of answer")
    func tableCoversEveryAnswer() {
        let answers = Self.clients.flatMap { client in Machine.allCases.map { Self.expectedAnswer(for: client, machine: $0) } }
        #expect(answers.contains(.none))
        #expect(answers.contains(.tftp(file: "undionly.kpxe")))
        #expect(answers.contains(.tftp(file: "ipxe.efi")))
        #expect(answers.contains(.tftp(file: "arm64/ipxe.efi")))
        #expect(answers.contains(.http(url: "http://10.0.0.2:8080/files/ipxe.efi")))
        #expect(answers.contains(.ipxeScript(url: Fixture.clientScriptURL)))
    }
}
