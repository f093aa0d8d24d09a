import NIOCore

/// Why a datagram is not a TFTP packet. Carries enough context for a log line and an ERROR reply.
public enum TFTPPacketDecodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Fewer bytes than the packet type needs.
    case truncated(opcode: UInt16?, length: Int)
    case unknownOpcode(UInt16)
    /// A string field runs to the end of the datagram without its NUL.
    case unterminatedString(field: String)
    case emptyFilename
    case invalidUTF8(field: String)
    case unknownMode(String)
    /// An option name with no value after it.
    case optionWithoutValue(name: String)
    case emptyOptionName

    public var description: String {
        switch self {
        case .truncated(let opcode, let length):
            opcode.map { "packet with opcode \($0) is truncated (\(length) bytes)" } ?? "datagram of \(length) bytes is too short"
        case .unknownOpcode(let opcode): "unknown opcode \(opcode)"
        case .unterminatedString(let field): "\(field) is not NUL-terminated"
        case .emptyFilename: "empty filename"
        case .invalidUTF8(let field): "\(field) is not valid UTF-8"
        case .unknownMode(let mode): "unknown transfer mode '\(mode)'"
        case .optionWithoutValue(let name): "option '\(name)' has no value"
        case .emptyOptionName: "empty option name"
        }
    }
}

extension ByteBuffer {
    /// Reads the whole readable part as one packet (a datagram is exactly one packet).
    public mutating func readTFTPPacket() throws(TFTPPacketDecodeError) -> TFTPPacket {
        let length = readableBytes
        guard let rawOpcode = readInteger(as: UInt16.self) else { throw .truncated(opcode: nil, length: length) }
        guard let opcode = TFTPOpcode(rawValue: rawOpcode) else { throw .unknownOpcode(rawOpcode) }
        switch opcode {
        case .readRequest, .writeRequest:
            let request = try readTFTPRequest()
            return opcode == .readRequest ? .readRequest(request) : .writeRequest(request)
        case .data:
            guard let block = readInteger(as: UInt16.self) else { throw .truncated(opcode: rawOpcode, length: length) }
            return .data(block: block, payload: readSlice(length: readableBytes)!)
        case .acknowledgement:
            guard let block = readInteger(as: UInt16.self) else { throw .truncated(opcode: rawOpcode, length: length) }
            // Trailing bytes after an ACK are tolerated: some clients pad datagrams.
            moveReaderIndex(forwardBy: readableBytes)
            return .acknowledgement(block: block)
        case .error:
            guard let code = readInteger(as: UInt16.self) else { throw .truncated(opcode: rawOpcode, length: length) }
            let message = try readTFTPString(field: "error message")
            moveReaderIndex(forwardBy: readableBytes)
            return .error(code: TFTPErrorCode(rawValue: code), message: message)
        case .optionAcknowledgement:
            return .optionAcknowledgement(try readTFTPOptions())
        }
    }

    private mutating func readTFTPRequest() throws(TFTPPacketDecodeError) -> TFTPRequest {
        let filename = try readTFTPString(field: "filename")
        guard !filename.isEmpty else { throw .emptyFilename }
        let modeName = try readTFTPString(field: "mode")
        guard let mode = TFTPTransferMode(wireName: modeName) else { throw .unknownMode(modeName) }
        return TFTPRequest(filename: filename, mode: mode, options: try readTFTPOptions())
    }

    /// Name/value pairs up to the end. Trailing NUL padding (seen from some PXE ROMs) is not an option.
    private mutating func readTFTPOptions() throws(TFTPPacketDecodeError) -> [TFTPOption] {
        var options: [TFTPOption] = []
        while readableBytes > 0 {
            if readableBytesView.allSatisfy({ $0 == 0 }) {
                moveReaderIndex(forwardBy: readableBytes)
                break
            }
            let name = try readTFTPString(field: "option name")
            guard !name.isEmpty else { throw .emptyOptionName }
            guard readableBytes > 0 else { throw .optionWithoutValue(name: name) }
            let value = try readTFTPString(field: "value of option '\(name)'")
            options.append(TFTPOption(name, value))
        }
        return options
    }

    private mutating func readTFTPString(field: String) throws(TFTPPacketDecodeError) -> String {
        guard let end = readableBytesView.firstIndex(of: 0) else { throw .unterminatedString(field: field) }
        let bytes = readableBytesView[readableBytesView.startIndex..<end]
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8(field: field) }
        moveReaderIndex(forwardBy: bytes.count + 1)
        return text
    }

    /// Appends one packet.
    @discardableResult
    public mutating func writeTFTPPacket(_ packet: TFTPPacket) -> Int {
        let start = writerIndex
        writeInteger(packet.opcode.rawValue)
        switch packet {
        case .readRequest(let request), .writeRequest(let request):
            writeTFTPString(request.filename)
            writeTFTPString(request.mode.rawValue)
            for option in request.options { writeTFTPOption(option) }
        case .data(let block, var payload):
            writeInteger(block)
            writeBuffer(&payload)
        case .acknowledgement(let block):
            writeInteger(block)
        case .error(let code, let message):
            writeInteger(code.rawValue)
            writeTFTPString(message)
        case .optionAcknowledgement(let options):
            for option in options { writeTFTPOption(option) }
        }
        return writerIndex - start
    }

    /// Appends a DATA packet whose payload is `payload`, without building an intermediate buffer.
    public mutating func writeTFTPData<Bytes: Collection<UInt8>>(block: UInt16, payload: Bytes) {
        writeInteger(TFTPOpcode.data.rawValue)
        writeInteger(block)
        writeBytes(payload)
    }

    private mutating func writeTFTPOption(_ option: TFTPOption) {
        writeTFTPString(option.name)
        writeTFTPString(option.value)
    }

    private mutating func writeTFTPString(_ text: String) {
        writeString(text)
        writeInteger(UInt8(0))
    }
}

extension TFTPPacket {
    /// Encodes into a fresh buffer.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 32)
        buffer.writeTFTPPacket(self)
        return buffer
    }

    /// Decodes one datagram.
    public init(decoding datagram: ByteBuffer) throws(TFTPPacketDecodeError) {
        var copy = datagram
        self = try copy.readTFTPPacket()
    }
}
