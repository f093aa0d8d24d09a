import DHCPWire
import NetworkPrimitives
import ProvisioningModel

/// What Anvil tells a booting client, and why.
public struct BootDecision: Sendable, Equatable {
    public enum Answer: Sendable, Equatable {
        /// An address only: the client does not network-boot, or must not (local disk, ignored).
        case none
        /// A loader fetched over TFTP (`siaddr` + `file`).
        case tftp(file: String)
        /// UEFI HTTP Boot: a URL in `file`, vendor class `HTTPClient` echoed.
        case http(url: String)
        /// A client that already runs iPXE: its per-machine script.
        case ipxeScript(url: String)
    }

    public var answer: Answer
    public var reason: String

    public init(_ answer: Answer, reason: String) {
        self.answer = answer
        self.reason = reason
    }
}

/// What the inventory knows of the client, reduced to what the decision needs.
public enum KnownMachine: Sendable, Equatable {
    case unknown
    case known(name: String, bootEnv: String, state: MachineState)
}

public enum UnknownMachinePolicy: String, Codable, Sendable, CaseIterable {
    /// Unknown machines boot the discovery image and call home.
    case discovery
    /// Unknown machines get an address (in full mode) but no boot information.
    case ignore
}

/// The site's netboot settings: loaders per architecture, where the boot plane is.
public struct BootPolicy: Sendable {
    public var unknownMachines: UnknownMachinePolicy
    /// Loaders served over TFTP, by client architecture (option 93).
    public var tftpLoaders: [ClientArchitecture: String]
    /// Loaders served over HTTP to UEFI HTTP Boot clients, by architecture (paths under `/files/`).
    public var httpLoaders: [ClientArchitecture: String]

    public static let defaultTFTPLoaders: [ClientArchitecture: String] = [
        .x86BIOS: "undionly.kpxe", .efiX64: "ipxe.efi", .efiByteCode: "ipxe.efi", .efiARM64: "arm64/ipxe.efi",
    ]
    public static let defaultHTTPLoaders: [ClientArchitecture: String] = [.efiX64HTTP: "ipxe.efi", .efiARM64HTTP: "arm64/ipxe.efi"]

    public init(
        unknownMachines: UnknownMachinePolicy = .discovery, tftpLoaders: [ClientArchitecture: String] = Self.defaultTFTPLoaders,
        httpLoaders: [ClientArchitecture: String] = Self.defaultHTTPLoaders
    ) {
        self.unknownMachines = unknownMachines
        self.tftpLoaders = tftpLoaders
        self.httpLoaders = httpLoaders
    }


    /// Decides the boot answer. `bootBaseURL` is the boot plane as the client reaches it (`http://10.0.0.1:8080`).
    public func decide(_ facts: DHCPClientFacts, machine: KnownMachine, bootBaseURL: String) -> BootDecision {
        guard facts.wantsNetworkBoot else { return BootDecision(.none, reason: "not a network-boot client") }
        switch machine {
        case .unknown where unknownMachines == .ignore:
            return BootDecision(.none, reason: "unknown machine, policy ignore")
        case .known(let name, _, let state) where state == .retired:
            return BootDecision(.none, reason: "machine \(name) is retired")
        case .known(let name, let bootEnv, let state) where bootEnv == "local" && state != .reimageQueued && !facts.isIPXE:
            // Firmware falls through to the next boot device; an iPXE client gets the local-boot script instead.
            return BootDecision(.none, reason: "machine \(name) boots from local disk")
        default:
            break
        }
        let subject: String
        switch machine {
        case .unknown: subject = "unknown machine, policy discovery"
        case .known(let name, let bootEnv, let state): subject = "machine \(name) (\(state.rawValue), boot environment \(bootEnv))"
        }
        if facts.isIPXE {
            return BootDecision(.ipxeScript(url: BootEnv.ipxeScriptURL(bootBaseURL: bootBaseURL, mac: facts.mac)), reason: "\(subject); client runs iPXE")
        }
        let architecture = facts.architecture ?? .x86BIOS
        if facts.isHTTPClient {
            guard let loader = httpLoaders[architecture] else {
                return BootDecision(.none, reason: "\(subject); no HTTP loader for \(architecture)")
            }
            return BootDecision(.http(url: "\(bootBaseURL)/files/\(loader)"), reason: "\(subject); UEFI HTTP Boot \(architecture)")
        }
        guard let loader = tftpLoaders[architecture] else {
            return BootDecision(.none, reason: "\(subject); no TFTP loader for \(architecture)")
        }
        return BootDecision(.tftp(file: loader), reason: "\(subject); PXE \(architecture)")
    }
}
