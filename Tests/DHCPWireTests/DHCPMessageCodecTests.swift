import DHCPWire
import NIOCore
import NetworkPrimitives
import Testing

/// Hand-built packets: what the decoder rejects and why, typed option readers, RFC 3396 long options and
/// option overload.
@Suite("DHCP message codec")
struct DHCPMessageCodecTests {
    /// A raw BOOTP request: fixed fields (chaddr 52:54:00:12:34:56), cookie, then `options` as given, no END added.
    static func rawPacket(
        op: UInt8 = 1, hlen: UInt8 = 6, sname: [UInt8] = [], file: [UInt8] = [], cookie: UInt32 = DHCPMessage.magicCookie,
        options: [UInt8]
    ) -> ByteBuffer {
        var bytes: [UInt8] = [op, 1, hlen, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]
        bytes += Array(repeating: 0, count: 16)  // ciaddr, yiaddr, siaddr, giaddr
        bytes += [0x52, 0x54, 0x00, 0x12, 0x34, 0x56] + Array(repeating: 0, count: 10)
        bytes += sname + Array(repeating: 0, count: 64 - sname.count)
        bytes += file + Array(repeating: 0, count: 128 - file.count)
        bytes += [UInt8(cookie >> 24), UInt8(truncatingIfNeeded: cookie >> 16), UInt8(truncatingIfNeeded: cookie >> 8),
                  UInt8(truncatingIfNeeded: cookie)]
        return ByteBuffer(bytes: bytes + options)
    }

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
        #expect(message.encoded.readableBytes == DHCPMessage.minimumLength)
    }

    @Test("the raw packet helper decodes")
    func rawPacketDecodes() throws {
        let message = try DHCPMessage(buffer: Self.rawPacket(options: [53, 1, 1, 255]))
        #expect(message.clientMAC == MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56))
        #expect(message.transactionID == 0x1234_5678)
        #expect(try message.messageType() == .discover)
    }

    // MARK: Malformed input

    @Test("malformed datagrams throw the specific error")
    func malformedDatagrams() throws {
        let short = ByteBuffer(bytes: Array(Self.rawPacket(options: []).readableBytesView.prefix(239)))
        #expect(throws: DHCPDecodeError.truncated(needed: 240, available: 239)) { try DHCPMessage(buffer: short) }
        #expect(throws: DHCPDecodeError.truncated(needed: 240, available: 0)) { try DHCPMessage(buffer: ByteBuffer()) }
        #expect(throws: DHCPDecodeError.badMagicCookie(0x6382_5364)) {
            try DHCPMessage(buffer: Self.rawPacket(cookie: 0x6382_5364, options: [255]))
        }
        #expect(throws: DHCPDecodeError.badOperation(3)) { try DHCPMessage(buffer: Self.rawPacket(op: 3, options: [255])) }
        #expect(throws: DHCPDecodeError.badOperation(0)) { try DHCPMessage(buffer: Self.rawPacket(op: 0, options: [255])) }
        #expect(throws: DHCPDecodeError.badHardwareAddressLength(17)) {
            try DHCPMessage(buffer: Self.rawPacket(hlen: 17, options: [255]))
        }
        #expect(throws: Never.self) { try DHCPMessage(buffer: Self.rawPacket(hlen: 16, options: [255])) }
    }

    @Test("an option running past its area throws optionOverrun")
    func optionOverrun() throws {
        #expect(throws: DHCPDecodeError.optionOverrun(code: 60, length: 5, remaining: 2)) {
            try DHCPMessage(buffer: Self.rawPacket(options: [53, 1, 1, 60, 5, 0x50, 0x58]))
        }
        // A code with no length byte left.
        #expect(throws: DHCPDecodeError.optionOverrun(code: 60, length: 0, remaining: 0)) {
            try DHCPMessage(buffer: Self.rawPacket(options: [53, 1, 1, 60]))
        }
        // In an overloaded file field.
        #expect(throws: DHCPDecodeError.optionOverrun(code: 67, length: 200, remaining: 126)) {
            try DHCPMessage(buffer: Self.rawPacket(file: [67, 200], options: [52, 1, 1, 255]))
        }
    }

    @Test("a missing END is tolerated; bytes after END are ignored")
    func endHandling() throws {
        let withoutEnd = try DHCPMessage(buffer: Self.rawPacket(options: [53, 1, 3, 0, 0]))
        #expect(try withoutEnd.messageType() == .request)
        let trailing = try DHCPMessage(buffer: Self.rawPacket(options: [53, 1, 3, 255, 60, 200, 1]))
        #expect(trailing.options.codes == [.messageType])
    }

    @Test("a bad option 52 value throws badOptionValue", arguments: [[52, 1, 0], [52, 1, 4], [52, 0], [52, 2, 1, 1]] as [[UInt8]])
    func badOverload(options: [UInt8]) throws {
        #expect(throws: DHCPDecodeError.badOptionValue(code: .optionOverload, reason: "expected 1, 2 or 3")) {
            try DHCPMessage(buffer: Self.rawPacket(options: options + [255]))
        }
    }

    @Test("every decode error has a description and a metric label")
    func errorTexts() {
        let errors: [DHCPDecodeError] = [
            .truncated(needed: 240, available: 3), .badMagicCookie(1), .badOperation(9), .badHardwareAddressLength(20),
            .optionOverrun(code: 1, length: 4, remaining: 2), .badOptionValue(code: .leaseTime, reason: "x"),
        ]
        #expect(Set(errors.map(\.metricReason)).count == errors.count)
        #expect(errors.allSatisfy { !$0.description.isEmpty })
    }

    // MARK: Typed readers

    @Test("typed readers throw badOptionValue for wrong lengths")
    func typedReadersRejectWrongLengths() throws {
        func expectBad(_ code: DHCPOptionCode, _ value: [UInt8], _ read: (DHCPOptions) throws -> Void) {
            let options = DHCPOptions([(code, value)])
            let error = #expect(throws: DHCPDecodeError.self) { try read(options) }
            guard case .badOptionValue(let reported, _) = error else {
                Issue.record("expected badOptionValue for \(code) \(value), got \(String(describing: error))")
                return
            }
            #expect(reported == code)
        }
        expectBad(.messageType, [], { _ = try $0.messageType() })
        expectBad(.messageType, [1, 1], { _ = try $0.messageType() })
        expectBad(.messageType, [9], { _ = try $0.messageType() })
        expectBad(.messageType, [0], { _ = try $0.messageType() })
        expectBad(.serverIdentifier, [10, 0, 0], { _ = try $0.address(.serverIdentifier) })
        expectBad(.serverIdentifier, [10, 0, 0, 1, 2], { _ = try $0.address(.serverIdentifier) })
        expectBad(.router, [], { _ = try $0.addresses(.router) })
        expectBad(.router, [10, 0, 0, 1, 10], { _ = try $0.addresses(.router) })
        expectBad(.leaseTime, [0, 0, 14], { _ = try $0.uint32(.leaseTime) })
        expectBad(.maximumMessageSize, [5], { _ = try $0.uint16(.maximumMessageSize) })
        expectBad(.maximumMessageSize, [5, 192, 0], { _ = try $0.uint16(.maximumMessageSize) })
        expectBad(.clientSystemArchitecture, [], { _ = try $0.clientArchitectures() })
        expectBad(.clientSystemArchitecture, [0, 7, 0], { _ = try $0.clientArchitectures() })
        expectBad(.clientMachineIdentifier, Array(repeating: 0, count: 16), { _ = try $0.clientMachineIdentifier() })
        expectBad(.clientMachineIdentifier, [1] + Array(repeating: 0, count: 16), { _ = try $0.clientMachineIdentifier() })
        expectBad(.ipxeEncapsulated, [177, 5, 1, 2], { _ = try $0.encapsulated(.ipxeEncapsulated) })
        expectBad(.ipxeEncapsulated, [177], { _ = try $0.encapsulated(.ipxeEncapsulated) })
    }

    @Test("typed readers read well-formed values")
    func typedReadersReadValues() throws {
        var options = DHCPOptions()
        options.set(messageType: .ack)
        options.set(.serverIdentifier, address: IPv4Address(10, 0, 0, 1))
        options.set(.router, addresses: [IPv4Address(10, 0, 0, 1), IPv4Address(10, 0, 0, 2)])
        options.set(.leaseTime, uint32: 86_400)
        options[.maximumMessageSize] = [0x05, 0xc0]
        options.set(.bootfileName, string: "ipxe.efi")
        options[.vendorClassIdentifier] = Array("PXEClient".utf8) + [0, 0]
        options[.clientSystemArchitecture] = [0, 7, 0, 16]
        options[.userClass] = [4] + Array("iPXE".utf8) + [3] + Array("foo".utf8)
        options[.ipxeEncapsulated] = [0, 177, 2, 1, 2, 176, 0, 255, 9]
        #expect(try options.messageType() == .ack)
        #expect(try options.address(.serverIdentifier) == IPv4Address(10, 0, 0, 1))
        #expect(try options.addresses(.router) == [IPv4Address(10, 0, 0, 1), IPv4Address(10, 0, 0, 2)])
        #expect(try options.uint32(.leaseTime) == 86_400)
        #expect(try options.uint16(.maximumMessageSize) == 1472)
        #expect(options.string(.bootfileName) == "ipxe.efi")
        #expect(options.string(.vendorClassIdentifier) == "PXEClient")  // trailing NULs dropped
        #expect(try options.clientArchitectures() == [.efiX64, .efiX64HTTP])
        #expect(options.userClasses == ["iPXE", "foo"])  // RFC 3004 list
        let subOptions = try #require(try options.encapsulated(.ipxeEncapsulated))
        #expect(subOptions == DHCPOptions([(DHCPOptionCode(177), [1, 2]), (DHCPOptionCode(176), [])]))
        #expect(DHCPOptions.encapsulate(subOptions) == [177, 2, 1, 2, 176, 0])
    }

    @Test("option 97 reads in SMBIOS order: the first three fields are little-endian on the wire")
    func machineIdentifierByteOrder() throws {
        // What iPXE and OVMF send for QEMU's -smbios type=1,uuid=4e1f0c2a-6b3d-4c5e-8f70-a70000000004.
        let wire: [UInt8] = [0, 0x2a, 0x0c, 0x1f, 0x4e, 0x3d, 0x6b, 0x5e, 0x4c, 0x8f, 0x70, 0xa7, 0, 0, 0, 0, 0x04]
        let options = DHCPOptions([(.clientMachineIdentifier, wire)])
        #expect(try options.clientMachineIdentifier() == "4e1f0c2a-6b3d-4c5e-8f70-a70000000004")
    }

    @Test("user class: iPXE's bare string is one class")
    func bareUserClass() {
        #expect(DHCPOptions([(.userClass, Array("iPXE".utf8))]).userClasses == ["iPXE"])
        #expect(DHCPOptions().userClasses == [])
    }

    @Test("absent options read as nil")
    func absentOptions() throws {
        let options = DHCPOptions()
        #expect(try options.messageType() == nil)
        #expect(try options.address(.serverIdentifier) == nil)
        #expect(try options.addresses(.router) == nil)
        #expect(try options.uint32(.leaseTime) == nil)
        #expect(try options.uint16(.maximumMessageSize) == nil)
        #expect(options.string(.hostName) == nil)
        #expect(try options.clientArchitectures() == nil)
        #expect(try options.clientMachineIdentifier() == nil)
        #expect(try options.encapsulated(.vendorSpecific) == nil)
        #expect(options.parameterRequestList == [])
        #expect(options[.bootfileName] == nil)
        let message = try DHCPMessage(buffer: Self.rawPacket(options: [255]))
        #expect(try message.messageType() == nil)
        #expect(message.options.isEmpty)
    }

    // MARK: RFC 3396

    @Test("an option over 255 bytes is split on encode and concatenated on decode")
    func longOptionSplitAndConcatenated() throws {
        let long = (0..<600).map { UInt8(truncatingIfNeeded: $0) }
        var message = DHCPMessage(operation: .reply, transactionID: 7)
        message.options.set(messageType: .offer)
        message.options[.vendorSpecific] = long
        message.options.set(.bootfileName, string: "x")
        let bytes = Array(message.encoded.readableBytesView)
        // 53 (3 bytes), then 43 as 255 + 255 + 90, then 67, END.
        let options = Array(bytes[DHCPMessage.headerLength...])
        #expect(Array(options[0..<3]) == [53, 1, 2])
        #expect(Array(options[3..<5]) == [43, 255])
        #expect(Array(options[5..<260]) == Array(long[0..<255]))
        #expect(Array(options[260..<262]) == [43, 255])
        #expect(Array(options[517..<519]) == [43, 90])
        #expect(Array(options[609..<613]) == [67, 1, UInt8(ascii: "x"), 255])
        let decoded = try DHCPMessage(buffer: ByteBuffer(bytes: bytes))
        #expect(decoded.options[.vendorSpecific] == long)
        #expect(decoded == message)
    }

    @Test("repeated instances of an option are concatenated in order")
    func repeatedInstancesConcatenate() throws {
        let message = try DHCPMessage(buffer: Self.rawPacket(options: [60, 3] + Array("PXE".utf8) + [53, 1, 1, 60, 6]
            + Array("Client".utf8) + [255]))
        #expect(message.options.string(.vendorClassIdentifier) == "PXEClient")
        #expect(message.options.codes == [.vendorClassIdentifier, .messageType])
    }

    @Test("option overload: file (1), sname (2) and both (3) are read after the options field")
    func overloadIsRead() throws {
        let file: [UInt8] = [67, 8] + Array("ipxe.efi".utf8) + [60, 6] + Array("Client".utf8) + [255]
        let sname: [UInt8] = [66, 9] + Array("10.0.0.1:".utf8) + [0, 0, 66, 2] + Array("69".utf8) + [255]
        let start: [UInt8] = [53, 1, 2, 60, 3] + Array("PXE".utf8)

        let fileOnly = try DHCPMessage(buffer: Self.rawPacket(sname: Array("host".utf8), file: file, options: start + [52, 1, 1, 255]))
        #expect(fileOnly.options.string(.bootfileName) == "ipxe.efi")
        #expect(fileOnly.options.string(.vendorClassIdentifier) == "PXEClient")  // options field first, then file
        #expect(fileOnly.options[.optionOverload] == nil)
        #expect(fileOnly.bootFile == "" && fileOnly.bootFileField == Array(repeating: 0, count: 128))
        #expect(fileOnly.serverName == "host")  // not overloaded: stays a name

        let snameOnly = try DHCPMessage(buffer: Self.rawPacket(sname: sname, file: Array("pxelinux.0".utf8), options: start + [52, 1, 2, 255]))
        #expect(snameOnly.options.string(.tftpServerName) == "10.0.0.1:69")
        #expect(snameOnly.bootFile == "pxelinux.0")
        #expect(snameOnly.serverNameField == Array(repeating: 0, count: 64))

        let both = try DHCPMessage(buffer: Self.rawPacket(sname: sname, file: file, options: start + [52, 1, 3, 255]))
        #expect(both.options.codes == [.messageType, .vendorClassIdentifier, .bootfileName, .tftpServerName])
        #expect(both.options.string(.vendorClassIdentifier) == "PXEClient")
        #expect(try DHCPMessage(buffer: both.encoded) == both)
    }

    @Test("option 52 inside an overloaded field is dropped, so the message round-trips")
    func overloadInsideOverloadedField() throws {
        // Before the fix a 52 in `file` survived into `options`; re-encoded, it overloaded the (now empty)
        // fields again and the second decode differed.
        let file: [UInt8] = [52, 1, 2, 67, 3] + Array("a.b".utf8) + [255]
        let message = try DHCPMessage(buffer: Self.rawPacket(file: file, options: [53, 1, 1, 52, 1, 1, 255]))
        #expect(message.options.codes == [.messageType, .bootfileName])
        #expect(try DHCPMessage(buffer: message.encoded) == message)
    }
}
