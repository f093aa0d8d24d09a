import NIOCore

/// What a server allows clients to ask for.
public struct TFTPOptionLimits: Sendable, Hashable {
    /// RFC 2348 allows 8…65464; a larger request is answered with this.
    public var maximumBlockSize: Int
    /// RFC 7440 allows 1…65535; a larger request is answered with this. Bounds the burst (and memory) per transfer.
    public var maximumWindowSize: Int

    public init(maximumBlockSize: Int = TFTPTransferParameters.largestBlockSize, maximumWindowSize: Int = 64) {
        self.maximumBlockSize = min(max(maximumBlockSize, TFTPTransferParameters.smallestBlockSize), TFTPTransferParameters.largestBlockSize)
        self.maximumWindowSize = min(max(maximumWindowSize, 1), 65535)
    }
}

/// The parameters a transfer runs with once options are settled.
public struct TFTPTransferParameters: Sendable, Hashable {
    public static let defaultBlockSize = 512
    public static let smallestBlockSize = 8
    public static let largestBlockSize = 65464

    public var blockSize: Int
    public var windowSize: Int
    /// The retransmission timeout the client asked for (RFC 2349), if it did.
    public var timeout: TimeAmount?

    public init(blockSize: Int = Self.defaultBlockSize, windowSize: Int = 1, timeout: TimeAmount? = nil) {
        self.blockSize = blockSize
        self.windowSize = windowSize
        self.timeout = timeout
    }
}

/// The server's answer to a request's options: what goes into the OACK, and what the transfer uses.
/// Options the server does not know, or whose values are out of range or not numbers, are left out
/// (RFC 2347: the client then runs without them); an empty OACK means no OACK at all (RFC 1350 reply).
public struct TFTPOptionNegotiation: Sendable, Hashable {
    public var parameters: TFTPTransferParameters
    /// In the order the client sent them, lower-case names.
    public var acknowledged: [TFTPOption]

    public init(parameters: TFTPTransferParameters, acknowledged: [TFTPOption]) {
        self.parameters = parameters
        self.acknowledged = acknowledged
    }

    /// - Parameter transferSize: the size reported for `tsize`; `nil` when it is not known up front
    ///   (netascii, where the client's local size differs from what travels), and then `tsize` is not acknowledged.
    public static func negotiate(_ requested: [TFTPOption], transferSize: Int?, limits: TFTPOptionLimits) -> TFTPOptionNegotiation {
        var parameters = TFTPTransferParameters()
        var acknowledged: [TFTPOption] = []
        var seen: Set<String> = []
        for option in requested {
            let name = option.name.lowercased()
            // A repeated option keeps its first value: later copies cannot change what was agreed.
            guard seen.insert(name).inserted else { continue }
            switch name {
            case TFTPOption.blockSize:
                guard let value = decimal(option.value), value >= TFTPTransferParameters.smallestBlockSize else { continue }
                parameters.blockSize = min(value, limits.maximumBlockSize)
                acknowledged.append(TFTPOption(name, String(parameters.blockSize)))
            case TFTPOption.windowSize:
                guard let value = decimal(option.value), (1...65535).contains(value) else { continue }
                parameters.windowSize = min(value, limits.maximumWindowSize)
                acknowledged.append(TFTPOption(name, String(parameters.windowSize)))
            case TFTPOption.timeout:
                guard let value = decimal(option.value), (1...255).contains(value) else { continue }
                parameters.timeout = .seconds(Int64(value))
                acknowledged.append(TFTPOption(name, String(value)))
            case TFTPOption.transferSize:
                // Not for an empty file: curl (7.88) rejects "tsize 0" in an OACK and aborts, while
                // leaving the option out is always allowed (RFC 2347) and the transfer shows the size anyway.
                guard let transferSize, transferSize > 0, decimal(option.value) != nil else { continue }
                acknowledged.append(TFTPOption(name, String(transferSize)))
            default:
                continue
            }
        }
        return TFTPOptionNegotiation(parameters: parameters, acknowledged: acknowledged)
    }

    /// Plain ASCII digits only (no sign, no spaces); anything longer than 10 digits is absurd for every option.
    static func decimal(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 10, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(text)
    }
}
