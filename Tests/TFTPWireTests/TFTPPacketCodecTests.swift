import NIOCore
import TFTPWire
import ApplianceTesting
import Testing

@Suite("TFTP packet codec")
struct TFTPPacketCodecTests {
    static let roundTripped: [TFTPPacket] = [
        .readRequest(TFTPRequest(filename: "undionly.kpxe", mode: .octet)),
        .readRequest(TFTPRequest(filename: "pxelinux.cfg/01-52-54-00-12-34-56", mode: .netascii, options: [
            TFTPOption("blksize", "1468"), TFTPOption("tsize", "0"), TFTPOption("windowsize", "16"),
        ])),
        .writeRequest(TFTPRequest(filename: "upload.bin", mode: .octet)),
        .data(block: 1, payload: ByteBuffer(bytes: [1, 2, 3])),
        .data(block: 65535, payload: ByteBuffer()),
        .acknowledgement(block: 0),
        .error(code: .fileNotFound, message: "file not found"),
        .error(code: TFTPErrorCode(rawValue: 42), message: ""),
        .optionAcknowledgement([TFTPOption("blksize", "1468"), TFTPOption("tsize", "1048576")]),
    ]

    @Test("encode then decode gives the same packet", arguments: roundTripped)
    func roundTrip(_ packet: TFTPPacket) throws {
        #expect(try TFTPPacket(decoding: packet.encoded()) == packet)
    }

    @Test("a read request has the RFC 1350 layout")
    func readRequestBytes() {
        let packet = TFTPPacket.readRequest(TFTPRequest(filename: "a", mode: .octet, options: [TFTPOption("tsize", "0")]))
        #expect(Array(packet.encoded().readableBytesView) == [0, 1, 0x61, 0] + Array("octet".utf8) + [0] + Array("tsize".utf8) + [0, 0x30, 0])
    }

    @Test("modes are case-insensitive on the wire")
    func modeCase() throws {
        let bytes: [UInt8] = [0, 1, 0x61, 0] + Array("OcTeT".utf8) + [0]
        #expect(try TFTPPacket(decoding: ByteBuffer(bytes: bytes)) == .readRequest(TFTPRequest(filename: "a", mode: .octet)))
    }

    @Test("NUL padding after the options, as some PXE ROMs send, is not an option")
    func trailingPadding() throws {
        let bytes: [UInt8] = [0, 1, 0x61, 0] + Array("octet".utf8) + [0, 0, 0, 0]
        #expect(try TFTPPacket(decoding: ByteBuffer(bytes: bytes)) == .readRequest(TFTPRequest(filename: "a", mode: .octet)))
    }

    @Test("malformed datagrams throw a specific error", arguments: [
        ("empty", [], TFTPPacketDecodeError.truncated(opcode: nil, length: 0)),
        ("one byte", [0], .truncated(opcode: nil, length: 1)),
        ("unknown opcode", [0, 9, 0, 0], .unknownOpcode(9)),
        ("opcode zero", [0, 0], .unknownOpcode(0)),
        ("filename without NUL", [0, 1, 0x61, 0x62], .unterminatedString(field: "filename")),
        ("mode without NUL", [0, 1, 0x61, 0, 0x6F, 0x63], .unterminatedString(field: "mode")),
        ("zero-length filename", [0, 1, 0] + Array("octet".utf8) + [0], .emptyFilename),
        ("unknown mode", [0, 1, 0x61, 0] + Array("binary".utf8) + [0], .unknownMode("binary")),
        ("option without value", [0, 1, 0x61, 0] + Array("octet".utf8) + [0] + Array("tsize".utf8) + [0], .optionWithoutValue(name: "tsize")),
        ("option value without NUL", [0, 1, 0x61, 0] + Array("octet".utf8) + [0] + Array("tsize".utf8) + [0, 0x30],
            .unterminatedString(field: "value of option 'tsize'")),
        ("invalid UTF-8 filename", [0, 1, 0xFF, 0xFE, 0] + Array("octet".utf8) + [0], .invalidUTF8(field: "filename")),
        ("DATA without block", [0, 3, 0], .truncated(opcode: 3, length: 3)),
        ("ACK without block", [0, 4], .truncated(opcode: 4, length: 2)),
        ("ERROR without message NUL", [0, 5, 0, 1, 0x61], .unterminatedString(field: "error message")),
    ] as [(String, [UInt8], TFTPPacketDecodeError)])
    func malformed(_ reason: String, _ bytes: [UInt8], _ expected: TFTPPacketDecodeError) {
        #expect(throws: expected, "\(reason)") { try TFTPPacket(decoding: ByteBuffer(bytes: bytes)) }
    }

    @Test("an ACK padded with trailing bytes is still an ACK")
    func paddedAcknowledgement() throws {
        #expect(try TFTPPacket(decoding: ByteBuffer(bytes: [0, 4, 0, 7, 0, 0])) == .acknowledgement(block: 7))
    }

    @Test("random datagrams never trap; what decodes re-encodes to an equal packet")
    func randomInput() throws {
        var generator = SplitMix64(seed: 0x7F7F)
        let seeds = Self.roundTripped.map { Array($0.encoded().readableBytesView) }
        for round in 0..<20_000 {
            var bytes = seeds[round % seeds.count]
            // Mutate: flip bytes, truncate, or append noise.
            for _ in 0..<Int(generator.next() % 4) {
                guard !bytes.isEmpty else { break }
                bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
            }
            if generator.next() % 3 == 0 { bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count + 1)))) }
            if generator.next() % 5 == 0 { bytes += (0..<Int(generator.next() % 8)).map { _ in UInt8(truncatingIfNeeded: generator.next()) } }
            if let packet = try? TFTPPacket(decoding: ByteBuffer(bytes: bytes)) {
                #expect(try TFTPPacket(decoding: packet.encoded()) == packet, "\(bytes)")
            }
        }
    }
}


@Suite("Netascii")
struct NetasciiTests {
    @Test("LF becomes CR LF, CR becomes CR NUL, other bytes pass", arguments: [
        ([], []),
        (Array("a\nb".utf8), Array("a\r\nb".utf8)),
        (Array("a\rb".utf8), [0x61, 0x0D, 0x00, 0x62]),
        (Array("\r\n".utf8), [0x0D, 0x00, 0x0D, 0x0A]),
        ([0x00, 0xFF], [0x00, 0xFF]),
    ] as [([UInt8], [UInt8])])
    func encode(_ input: [UInt8], _ expected: [UInt8]) {
        #expect(Netascii.encode(input) == expected)
        #expect(Netascii.encodedLength(of: input) == expected.count)
    }
}
