import BootPolicy
import DHCPWire
import Foundation
import NetworkPrimitives
import ProvisioningModel

/// The fixed world the suites share: one lab subnet, Anvil's address on it, a fixed clock.
enum Fixture {
    /// Tests never read the real clock: they move time by adding seconds to this.
    static let now = Date(timeIntervalSince1970: 1_750_000_000)

    static let serverAddress = IPv4Address(10, 0, 0, 2)
    static let bootBaseURL = "http://10.0.0.2:8080"
    static let link = DHCPLink(serverAddress: serverAddress, bootBaseURL: bootBaseURL)

    static let clientMAC = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    /// The script URL of `clientMAC`, spelled out rather than built by `BootEnv.ipxeScriptURL`.
    static let clientScriptURL = "http://10.0.0.2:8080/boot/52-54-00-12-34-56.ipxe"

    static let subnetName = "lab"

    /// An address on the lab network 10.0.0.0/24.
    static func address(_ host: UInt8) -> IPv4Address { IPv4Address(10, 0, 0, host) }

    /// The dynamic range has four addresses (.100–.103) so that exhaustion takes four clients.
    static let range = (100...103).map { address(UInt8($0)) }

    static func subnet(nextServer: IPv4Address? = nil) -> Subnet {
        Subnet(
            name: subnetName, network: IPv4Network("10.0.0.0/24")!, rangeStart: address(100), rangeEnd: address(103),
            router: address(1), dnsServers: [address(1)], leaseSeconds: 3600, nextServer: nextServer)
    }

    /// A distinct locally administered MAC per index, for filling pools with clients.
    static func mac(_ index: Int) -> MACAddress {
        MACAddress(0x02, 0x00, UInt8(truncatingIfNeeded: index >> 24), UInt8(truncatingIfNeeded: index >> 16),
                   UInt8(truncatingIfNeeded: index >> 8), UInt8(truncatingIfNeeded: index))
    }
}

/// A client's DHCP message as firmware sends it: BOOTREQUEST, Ethernet chaddr and option 53;
/// `configure` adds fields and options.
func clientMessage(
    _ type: DHCPMessageType, mac: MACAddress = Fixture.clientMAC, transactionID: UInt32 = 0x1234_5678,
    configure: (inout DHCPMessage) -> Void = { _ in }
) -> DHCPMessage {
    var message = DHCPMessage(operation: .request, transactionID: transactionID)
    message.clientMAC = mac
    message.options.set(messageType: type)
    configure(&message)
    return message
}
