import DHCPWire
import NIOCore
import NetworkPrimitives
import Testing

@Suite("DHCP message codec")
struct DHCPMessageCodecTests {
    @Test("a built DISCOVER round-trips")
    func roundTrip() throws {
        var message = DHCPMessage(operation: .request, transactionID: 0x1234_5678)
        message.clientMAC = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
        message.isBroadcast = true
        message.options.set(messageType: .discover)
        message.options[.clientSystemArchitecture] = [0, 7]
        let decoded = try DHCPMessage(buffer: message.encoded)
        #expect(decoded == message)
        #expect(try decoded.messageType() == .discover)
        #expect(try decoded.options.clientArchitectures() == [.efiX64])
    }
}
