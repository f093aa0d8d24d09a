import NIOCore
import NetworkPrimitives

/// Why a datagram is not a DHCP message we can read. Each case says what was wrong and where.
public enum DHCPDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    case truncated(needed: Int, available: Int)
    case badMagicCookie(UInt32)
    case badOperation(UInt8)
    case badHardwareAddressLength(UInt8)
    /// An option's length byte points past the end of its area.
    case optionOverrun(code: UInt8, length: Int, remaining: Int)
    case badOptionValue(code: DHCPOptionCode, reason: String)

    public var description: String {
        switch self {
        case .truncated(let needed, let available): "truncated: \(available) bytes, need \(needed)"
        case .badMagicCookie(let cookie): "bad magic cookie 0x\(String(cookie, radix: 16))"
        case .badOperation(let op): "bad op \(op)"
        case .badHardwareAddressLength(let length): "hardware address length \(length) > 16"
        case .optionOverrun(let code, let length, let remaining): "option \(code) length \(length) overruns (\(remaining) bytes left)"
        case .badOptionValue(let code, let reason): "\(code): \(reason)"
        }
    }

    /// A short stable label for metrics (`dhcp_dropped_total{reason=…}`).
    public var metricReason: String {
        switch self {
        case .truncated: "truncated"
        case .badMagicCookie: "bad_cookie"
        case .badOperation: "bad_op"
        case .badHardwareAddressLength: "bad_hlen"
        case .optionOverrun: "option_overrun"
        case .badOptionValue: "bad_option"
        }
    }
}

/// A DHCPv4 message (RFC 2131 §2): the fixed BOOTP fields plus options.
public struct DHCPMessage: Hashable, Sendable {
    public enum Operation: UInt8, Sendable {
        case request = 1
        case reply = 2
    }

    public static let magicCookie: UInt32 = 0x6382_5363
    /// The fixed part before the options (op … file) plus the magic cookie.
    public static let headerLength = 240
    /// BOOTP's minimum message size; some firmware drops shorter replies.
    public static let minimumLength = 300

    public var operation: Operation
    public var hardwareType: UInt8 = 1
    public var hardwareAddressLength: UInt8 = 6
    public var hops: UInt8 = 0
    public var transactionID: UInt32
    public var seconds: UInt16 = 0
    public var flags: UInt16 = 0
    public var clientAddress = IPv4Address(0)
    public var yourAddress = IPv4Address(0)
    public var serverAddress = IPv4Address(0)
    public var relayAgentAddress = IPv4Address(0)
    /// `chaddr`, always 16 bytes.
    public var clientHardwareAddress: [UInt8] = Array(repeating: 0, count: 16)
    /// `sname`, always 64 bytes.
    public var serverNameField: [UInt8] = Array(repeating: 0, count: 64)
    /// `file`, always 128 bytes.
    public var bootFileField: [UInt8] = Array(repeating: 0, count: 128)
    public var options = DHCPOptions()

    public init(operation: Operation, transactionID: UInt32) {
        self.operation = operation
        self.transactionID = transactionID
    }

    public var isBroadcast: Bool {
        get { flags & 0x8000 != 0 }
        set { flags = newValue ? flags | 0x8000 : flags & ~0x8000 }
    }

    /// The client's MAC, when the hardware is Ethernet.
    public var clientMAC: MACAddress? {
        get { hardwareType == 1 && hardwareAddressLength == 6 ? MACAddress(bytes: clientHardwareAddress.prefix(6)) : nil }
        set {
            guard let newValue else { return }
            hardwareType = 1
            hardwareAddressLength = 6
            clientHardwareAddress = newValue.byteArray + Array(repeating: 0, count: 10)
        }
    }

    public var serverName: String {
        get { Self.text(serverNameField) }
        set { serverNameField = Self.field(newValue, size: 64) }
    }

    public var bootFile: String {
        get { Self.text(bootFileField) }
        set { bootFileField = Self.field(newValue, size: 128) }
    }

    public func messageType() throws -> DHCPMessageType? { try options.messageType() }

    private static func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private static func field(_ text: String, size: Int) -> [UInt8] {
        let bytes = Array(text.utf8.prefix(size - 1))
        return bytes + Array(repeating: 0, count: size - bytes.count)
    }
}

extension DHCPMessage {
    /// Decodes a datagram. Options overloaded into `file`/`sname` (option 52) are merged into `options`
    /// and those fields cleared, so decode → encode → decode gives the same message.
    public init(buffer: ByteBuffer) throws {
        var buffer = buffer
        guard buffer.readableBytes >= Self.headerLength else {
            throw DHCPDecodeError.truncated(needed: Self.headerLength, available: buffer.readableBytes)
        }
        let opByte = buffer.readInteger(as: UInt8.self)!
        guard let operation = Operation(rawValue: opByte) else { throw DHCPDecodeError.badOperation(opByte) }
        self.init(operation: operation, transactionID: 0)
        hardwareType = buffer.readInteger()!
        hardwareAddressLength = buffer.readInteger()!
        guard hardwareAddressLength <= 16 else { throw DHCPDecodeError.badHardwareAddressLength(hardwareAddressLength) }
        hops = buffer.readInteger()!
        transactionID = buffer.readInteger()!
        seconds = buffer.readInteger()!
        flags = buffer.readInteger()!
        clientAddress = IPv4Address(buffer.readInteger(as: UInt32.self)!)
        yourAddress = IPv4Address(buffer.readInteger(as: UInt32.self)!)
        serverAddress = IPv4Address(buffer.readInteger(as: UInt32.self)!)
        relayAgentAddress = IPv4Address(buffer.readInteger(as: UInt32.self)!)
        clientHardwareAddress = buffer.readBytes(length: 16)!
        serverNameField = buffer.readBytes(length: 64)!
        bootFileField = buffer.readBytes(length: 128)!
        let cookie = buffer.readInteger(as: UInt32.self)!
        guard cookie == Self.magicCookie else { throw DHCPDecodeError.badMagicCookie(cookie) }

        var options = try Self.decodeOptions(Array(buffer.readableBytesView))
        if let overload = options[.optionOverload] {
            guard overload.count == 1, (1...3).contains(overload[0]) else {
                throw DHCPDecodeError.badOptionValue(code: .optionOverload, reason: "expected 1, 2 or 3")
            }
            options[.optionOverload] = nil
            // RFC 3396 §7: options field, then file, then sname.
            if overload[0] & 1 != 0 {
                for (code, value) in try Self.decodeOptions(bootFileField) { options.append(code, value) }
                bootFileField = Array(repeating: 0, count: 128)
            }
            if overload[0] & 2 != 0 {
                for (code, value) in try Self.decodeOptions(serverNameField) { options.append(code, value) }
                serverNameField = Array(repeating: 0, count: 64)
            }
            // Option 52 belongs in the options field only (RFC 2131 §4.1). One inside file/sname would survive
            // into `options` and, re-encoded, overload fields that are now empty: drop it.
            options[.optionOverload] = nil
        }
        self.options = options
    }

    /// Reads an option area up to END (or its end: a missing END is tolerated, an overrun is not).
    static func decodeOptions(_ bytes: [UInt8]) throws -> DHCPOptions {
        var options = DHCPOptions()
        var index = 0
        while index < bytes.count {
            let code = bytes[index]
            index += 1
            if code == DHCPOptionCode.pad.rawValue { continue }
            if code == DHCPOptionCode.end.rawValue { break }
            guard index < bytes.count else { throw DHCPDecodeError.optionOverrun(code: code, length: 0, remaining: 0) }
            let length = Int(bytes[index])
            index += 1
            guard index + length <= bytes.count else {
                throw DHCPDecodeError.optionOverrun(code: code, length: length, remaining: bytes.count - index)
            }
            options.append(DHCPOptionCode(code), Array(bytes[index..<(index + length)]))
            index += length
        }
        return options
    }

    /// Encodes the message, splitting long options (RFC 3396) and padding to the BOOTP minimum size.
    public func encode(into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(operation.rawValue)
        buffer.writeInteger(hardwareType)
        buffer.writeInteger(hardwareAddressLength)
        buffer.writeInteger(hops)
        buffer.writeInteger(transactionID)
        buffer.writeInteger(seconds)
        buffer.writeInteger(flags)
        for address in [clientAddress, yourAddress, serverAddress, relayAgentAddress] { buffer.writeInteger(address.value) }
        buffer.writeBytes(Self.fixed(clientHardwareAddress, 16))
        buffer.writeBytes(Self.fixed(serverNameField, 64))
        buffer.writeBytes(Self.fixed(bootFileField, 128))
        buffer.writeInteger(Self.magicCookie)
        for (code, value) in options {
            if value.isEmpty {
                buffer.writeBytes([code.rawValue, 0])
                continue
            }
            var offset = 0
            while offset < value.count {
                let chunk = value[offset..<min(value.count, offset + 255)]
                buffer.writeInteger(code.rawValue)
                buffer.writeInteger(UInt8(chunk.count))
                buffer.writeBytes(chunk)
                offset += chunk.count
            }
        }
        buffer.writeInteger(DHCPOptionCode.end.rawValue)
        let written = buffer.writerIndex - start
        if written < Self.minimumLength { buffer.writeRepeatingByte(0, count: Self.minimumLength - written) }
    }

    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }

    private static func fixed(_ bytes: [UInt8], _ size: Int) -> [UInt8] {
        Array(bytes.prefix(size)) + Array(repeating: 0, count: max(0, size - bytes.count))
    }
}
