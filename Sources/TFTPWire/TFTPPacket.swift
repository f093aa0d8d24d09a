import NIOCore

/// One TFTP packet (RFC 1350, with the option extension of RFC 2347).
public enum TFTPPacket: Sendable, Hashable {
    case readRequest(TFTPRequest)
    case writeRequest(TFTPRequest)
    /// `payload` is at most the negotiated block size; a shorter one ends the transfer.
    case data(block: UInt16, payload: ByteBuffer)
    case acknowledgement(block: UInt16)
    case error(code: TFTPErrorCode, message: String)
    /// OACK: the options the server accepted, with the values it will use.
    case optionAcknowledgement([TFTPOption])

    public var opcode: TFTPOpcode {
        switch self {
        case .readRequest: .readRequest
        case .writeRequest: .writeRequest
        case .data: .data
        case .acknowledgement: .acknowledgement
        case .error: .error
        case .optionAcknowledgement: .optionAcknowledgement
        }
    }
}

/// The first two bytes of every packet.
public enum TFTPOpcode: UInt16, Sendable, Hashable, CaseIterable {
    case readRequest = 1
    case writeRequest = 2
    case data = 3
    case acknowledgement = 4
    case error = 5
    case optionAcknowledgement = 6
}

/// A read or write request: file, mode and the options the client proposes.
public struct TFTPRequest: Sendable, Hashable {
    /// As sent by the client; not yet checked as a path.
    public var filename: String
    public var mode: TFTPTransferMode
    /// In the order sent; names as sent (compare them case-insensitively).
    public var options: [TFTPOption]

    public init(filename: String, mode: TFTPTransferMode, options: [TFTPOption] = []) {
        self.filename = filename
        self.mode = mode
        self.options = options
    }
}

public enum TFTPTransferMode: String, Sendable, Hashable, CaseIterable {
    /// Text: the sender turns LF into CR LF and CR into CR NUL (RFC 764).
    case netascii
    /// Bytes as they are.
    case octet
    /// Obsolete (RFC 1350 §1); decoded so that it can be refused by name.
    case mail

    /// Modes are case-insensitive on the wire.
    public init?(wireName: String) {
        self.init(rawValue: wireName.lowercased())
    }
}

/// One `name=value` option of RFC 2347.
public struct TFTPOption: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(name)=\(value)" }

    public static let blockSize = "blksize"
    public static let transferSize = "tsize"
    public static let timeout = "timeout"
    public static let windowSize = "windowsize"
}

/// The error codes of RFC 1350 and RFC 2347; an open set, since peers send codes outside it.
public struct TFTPErrorCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let notDefined = Self(rawValue: 0)
    public static let fileNotFound = Self(rawValue: 1)
    public static let accessViolation = Self(rawValue: 2)
    public static let diskFull = Self(rawValue: 3)
    public static let illegalOperation = Self(rawValue: 4)
    public static let unknownTransferID = Self(rawValue: 5)
    public static let fileAlreadyExists = Self(rawValue: 6)
    public static let noSuchUser = Self(rawValue: 7)
    public static let optionNegotiationFailed = Self(rawValue: 8)

    public var description: String {
        switch rawValue {
        case 0: "not defined"
        case 1: "file not found"
        case 2: "access violation"
        case 3: "disk full or allocation exceeded"
        case 4: "illegal TFTP operation"
        case 5: "unknown transfer ID"
        case 6: "file already exists"
        case 7: "no such user"
        case 8: "option negotiation failed"
        default: "error \(rawValue)"
        }
    }
}
