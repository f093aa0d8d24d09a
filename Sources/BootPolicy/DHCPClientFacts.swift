import DHCPWire
import NetworkPrimitives

/// What a DHCP client says about itself, read once from its message: the inputs of every decision.
public struct DHCPClientFacts: Sendable, Equatable {
    public var messageType: DHCPMessageType
    public var mac: MACAddress
    /// Option 93's first architecture; absent for clients that are not PXE.
    public var architecture: ClientArchitecture?
    /// Option 60, e.g. `PXEClient:Arch:00007:UNDI:003016` or `HTTPClient:Arch:00016`.
    public var vendorClass: String?
    public var userClasses: [String]
    /// Option 97 in SMBIOS text form.
    public var machineUUID: String?
    public var requestedAddress: IPv4Address?
    public var serverIdentifier: IPv4Address?
    public var hostname: String?
    /// `ciaddr`: set when the client owns an address (renewing, rebinding, INFORM).
    public var clientAddress: IPv4Address
    /// `giaddr`: the relay agent that forwarded the message, if any.
    public var relayAgent: IPv4Address?

    public init(
        messageType: DHCPMessageType, mac: MACAddress, architecture: ClientArchitecture? = nil, vendorClass: String? = nil,
        userClasses: [String] = [], machineUUID: String? = nil, requestedAddress: IPv4Address? = nil,
        serverIdentifier: IPv4Address? = nil, hostname: String? = nil, clientAddress: IPv4Address = IPv4Address(0),
        relayAgent: IPv4Address? = nil
    ) {
        self.messageType = messageType
        self.mac = mac
        self.architecture = architecture
        self.vendorClass = vendorClass
        self.userClasses = userClasses
        self.machineUUID = machineUUID
        self.requestedAddress = requestedAddress
        self.serverIdentifier = serverIdentifier
        self.hostname = hostname
        self.clientAddress = clientAddress
        self.relayAgent = relayAgent
    }

    /// Reads a client's message. Throws `DHCPFactsError` for what a server must not answer (a reply,
    /// no message type, no Ethernet MAC) and `DHCPDecodeError` for malformed typed options.
    public init(message: DHCPMessage) throws {
        guard message.operation == .request else { throw DHCPFactsError.notARequest }
        guard let type = try message.messageType() else { throw DHCPFactsError.noMessageType }
        guard [.discover, .request, .decline, .release, .inform].contains(type) else { throw DHCPFactsError.serverMessageType(type) }
        guard let mac = message.clientMAC else { throw DHCPFactsError.notEthernet }
        let options = message.options
        self.init(
            messageType: type, mac: mac, architecture: try options.clientArchitectures()?.first,
            vendorClass: options.string(.vendorClassIdentifier), userClasses: options.userClasses,
            machineUUID: try options.clientMachineIdentifier(), requestedAddress: try options.address(.requestedAddress),
            serverIdentifier: try options.address(.serverIdentifier), hostname: options.string(.hostName),
            clientAddress: message.clientAddress, relayAgent: message.relayAgentAddress.value == 0 ? nil : message.relayAgentAddress)
    }

    /// Firmware PXE (legacy or UEFI): vendor class `PXEClient…`.
    public var isPXEClient: Bool { vendorClass?.hasPrefix("PXEClient") ?? false }
    /// UEFI HTTP Boot: vendor class `HTTPClient…`.
    public var isHTTPClient: Bool { vendorClass?.hasPrefix("HTTPClient") ?? false }
    /// Already running iPXE: it must get a script, never a loader again.
    public var isIPXE: Bool { userClasses.contains("iPXE") }
    /// Anything that wants to network-boot.
    public var wantsNetworkBoot: Bool { isPXEClient || isHTTPClient || isIPXE }
}

/// Messages a server ignores, with a metric label.
public enum DHCPFactsError: Error, Equatable, Sendable, CustomStringConvertible {
    case notARequest
    case noMessageType
    case serverMessageType(DHCPMessageType)
    case notEthernet

    public var description: String {
        switch self {
        case .notARequest: "BOOTREPLY from a client port"
        case .noMessageType: "no DHCP message type (plain BOOTP is not served)"
        case .serverMessageType(let type): "a client sent a server message (\(type))"
        case .notEthernet: "hardware is not Ethernet with a 6-byte address"
        }
    }

    public var metricReason: String {
        switch self {
        case .notARequest: "not_request"
        case .noMessageType: "no_message_type"
        case .serverMessageType: "server_message_type"
        case .notEthernet: "not_ethernet"
        }
    }
}
