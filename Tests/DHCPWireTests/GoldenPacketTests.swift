import DHCPWire
import NIOCore
import NetworkPrimitives
import Testing

/// Real client packets captured by `Golden/capture.sh`: they decode, dump to the checked-in text,
/// round-trip, and show what the capture is known to contain.
@Suite("Golden DHCP client packets")
struct GoldenPacketTests {
    @Test("every .hex golden file has a capture description")
    func everyGoldenFileIsDescribed() throws {
        #expect(try Golden.hexFileNames() == GoldenCapture.names.sorted())
    }

    @Test("decodes and dumps to the golden text", arguments: GoldenCapture.names)
    func dumpMatchesGoldenText(name: String) throws {
        let message = try DHCPMessage(buffer: try Golden.buffer(name))
        let actual = message.dump()
        if Golden.updating {
            try Golden.write(actual, to: "\(name).txt")
            return
        }
        let expected = try #require(
            try Golden.text("\(name).txt"), "no \(name).txt golden; create it with ANVIL_UPDATE_GOLDEN=1")
        #expect(
            actual == expected,
            "dump of \(name) differs from \(name).txt (ANVIL_UPDATE_GOLDEN=1 rewrites it):\n\(Golden.diff(expected: expected, actual: actual))"
        )
    }

    @Test("decode → encode → decode gives an equal message", arguments: GoldenCapture.names)
    func roundTrip(name: String) throws {
        let bytes = try Golden.packet(name)
        let message = try DHCPMessage(buffer: ByteBuffer(bytes: bytes))
        let encoded = message.encoded
        let again = try DHCPMessage(buffer: encoded)
        #expect(again == message)
        // These clients send no overload and END right after the options, so the bytes come back unchanged
        // up to the END; only the padding can differ (the encoder pads to 300, never past).
        let endIndex = try #require(Self.endOffset(bytes))
        #expect(Array(encoded.readableBytesView.prefix(endIndex + 1)) == Array(bytes.prefix(endIndex + 1)))
    }

    @Test("shows the facts known about the capture", arguments: GoldenCapture.all)
    func knownFacts(capture: GoldenCapture) throws {
        let message = try DHCPMessage(buffer: try Golden.buffer(capture.name))
        let options = message.options
        #expect(message.operation == .request)
        #expect(try message.messageType() == capture.messageType)
        #expect(message.clientMAC == MACAddress(capture.mac))
        #expect(try options.clientArchitectures() == capture.architectures)
        if let prefix = capture.vendorClassPrefix {
            let vendorClass = try #require(options.string(.vendorClassIdentifier))
            #expect(vendorClass.hasPrefix(prefix))
        } else {
            #expect(options[.vendorClassIdentifier] == nil)
        }
        #expect(options.userClasses == capture.userClasses)
        #expect(try options.clientMachineIdentifier() == capture.uuid)
        switch capture.messageType {
        case .request:
            // Answering capture.sh's OFFER (selecting state): requested address and server id, no ciaddr.
            #expect(try options.address(.requestedAddress) == GoldenCapture.offeredAddress)
            #expect(try options.address(.serverIdentifier) == GoldenCapture.serverIdentifier)
            #expect(message.clientAddress == IPv4Address(0))
        default:
            #expect(options[.requestedAddress] == nil)
            #expect(options[.serverIdentifier] == nil)
        }
        #expect(message.yourAddress == IPv4Address(0))
        #expect(message.relayAgentAddress == IPv4Address(0))
        #expect(!options.parameterRequestList.isEmpty)
    }

    @Test("the REQUEST carries the DISCOVER's transaction ID", arguments: ["dhclient", "udhcpc", "dhcpcd", "ipxe-bios", "ovmf-pxe", "ovmf-http"])
    func requestKeepsTransactionID(client: String) throws {
        let discover = try DHCPMessage(buffer: try Golden.buffer("\(client)-discover"))
        let request = try DHCPMessage(buffer: try Golden.buffer("\(client)-request"))
        #expect(discover.transactionID == request.transactionID)
        #expect(discover.clientHardwareAddress == request.clientHardwareAddress)
    }

    @Test("client-specific details")
    func clientSpecifics() throws {
        let dhclient = try DHCPMessage(buffer: try Golden.buffer("dhclient-discover"))
        #expect(dhclient.options.string(.hostName) == "golden-client")  // capture.sh's UTS namespace
        let udhcpc = try DHCPMessage(buffer: try Golden.buffer("udhcpc-discover"))
        #expect(udhcpc.options[.clientIdentifier] == [1, 0x02, 0xa7, 0, 0, 0, 0x02])
        #expect(try udhcpc.options.uint16(.maximumMessageSize) == 576)
        // dhcpcd asks for rapid commit (80) with an empty value: an empty option must survive.
        let dhcpcd = try DHCPMessage(buffer: try Golden.buffer("dhcpcd-discover"))
        #expect(dhcpcd.options[DHCPOptionCode(80)] == [])
        #expect(dhcpcd.options[.clientIdentifier]?.first == 255)  // RFC 4361 IAID + DUID
        // iPXE announces its features in option 175; 177 is its bus ID (PCI, virtio vendor 0x1af4).
        let ipxe = try DHCPMessage(buffer: try Golden.buffer("ipxe-bios-discover"))
        let features = try #require(try ipxe.options.encapsulated(.ipxeEncapsulated))
        #expect(features[DHCPOptionCode(177)]?.prefix(3) == [1, 0x1a, 0xf4])
        #expect(features[DHCPOptionCode(235)] != nil)  // iPXE version
        // OVMF sets the broadcast flag; Linux clients and iPXE do not.
        for name in ["ovmf-pxe-discover", "ovmf-http-discover"] {
            #expect(try DHCPMessage(buffer: try Golden.buffer(name)).isBroadcast, "\(name)")
        }
        for name in ["dhclient-discover", "ipxe-bios-discover"] {
            #expect(try !DHCPMessage(buffer: try Golden.buffer(name)).isBroadcast, "\(name)")
        }
    }

    /// The offset of the END option in the main options area, walking the options as a client wrote them.
    private static func endOffset(_ bytes: [UInt8]) -> Int? {
        var index = DHCPMessage.headerLength
        while index < bytes.count {
            switch bytes[index] {
            case 0: index += 1
            case 255: return index
            default: index += 2 + Int(bytes[index + 1])
            }
        }
        return nil
    }
}
