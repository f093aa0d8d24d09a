/// A DHCP option code. An open registry: any code round-trips, the well-known ones have names.
public struct DHCPOptionCode: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public static let pad = Self(0)
    public static let subnetMask = Self(1)
    public static let router = Self(3)
    public static let domainNameServer = Self(6)
    public static let hostName = Self(12)
    public static let domainName = Self(15)
    public static let broadcastAddress = Self(28)
    public static let ntpServers = Self(42)
    public static let vendorSpecific = Self(43)
    public static let requestedAddress = Self(50)
    public static let leaseTime = Self(51)
    public static let optionOverload = Self(52)
    public static let messageType = Self(53)
    public static let serverIdentifier = Self(54)
    public static let parameterRequestList = Self(55)
    public static let message = Self(56)
    public static let maximumMessageSize = Self(57)
    public static let renewalTime = Self(58)
    public static let rebindingTime = Self(59)
    public static let vendorClassIdentifier = Self(60)
    public static let clientIdentifier = Self(61)
    public static let tftpServerName = Self(66)
    public static let bootfileName = Self(67)
    public static let userClass = Self(77)
    public static let relayAgentInformation = Self(82)
    public static let clientSystemArchitecture = Self(93)
    public static let clientNetworkInterface = Self(94)
    public static let clientMachineIdentifier = Self(97)
    public static let classlessStaticRoute = Self(121)
    /// iPXE's encapsulated options (RFC-less, documented by iPXE).
    public static let ipxeEncapsulated = Self(175)
    public static let end = Self(255)

    private static let names: [UInt8: String] = [
        1: "subnet-mask", 3: "router", 6: "dns", 12: "hostname", 15: "domain", 28: "broadcast", 42: "ntp",
        43: "vendor-specific", 50: "requested-address", 51: "lease-time", 52: "overload", 53: "message-type",
        54: "server-id", 55: "parameter-request-list", 56: "message", 57: "max-message-size", 58: "renewal-time",
        59: "rebinding-time", 60: "vendor-class", 61: "client-id", 66: "tftp-server", 67: "bootfile", 77: "user-class",
        82: "relay-agent-info", 93: "client-arch", 94: "client-ndi", 97: "client-uuid", 121: "classless-routes",
        175: "ipxe",
    ]

    public var description: String { Self.names[rawValue].map { "\($0)(\(rawValue))" } ?? "option-\(rawValue)" }
}

/// DHCP message types (option 53).
public enum DHCPMessageType: UInt8, Sendable, CaseIterable {
    case discover = 1, offer, request, decline, ack, nak, release, inform
}

/// Client system architecture (option 93, RFC 4578 and IANA's registry). Open: unknown values round-trip.
public struct ClientArchitecture: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let x86BIOS = Self(rawValue: 0)
    public static let efiIA32 = Self(rawValue: 6)
    public static let efiX64 = Self(rawValue: 7)
    public static let efiByteCode = Self(rawValue: 9)
    public static let efiARM64 = Self(rawValue: 11)
    public static let efiX64HTTP = Self(rawValue: 16)
    public static let efiARM64HTTP = Self(rawValue: 19)

    public var description: String {
        switch rawValue {
        case 0: "x86-bios"
        case 6: "efi-ia32"
        case 7: "efi-x64"
        case 9: "efi-bc"
        case 11: "efi-arm64"
        case 16: "efi-x64-http"
        case 19: "efi-arm64-http"
        default: "arch-\(rawValue)"
        }
    }
}
