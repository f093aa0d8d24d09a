/// A 48-bit Ethernet hardware address.
///
/// Parses the spellings operators and firmware use (`52:54:00:12:34:56`, `52-54-00-12-34-56`,
/// `5254.0012.3456`, `525400123456`) and always prints the canonical lowercase, colon-separated form,
/// so a MAC typed by a person and one reported by a DHCP client compare equal.
public struct MACAddress: Hashable, Sendable, Comparable {
    public let bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        bytes = (b0, b1, b2, b3, b4, b5)
    }

    /// Creates an address from exactly six bytes; `nil` for any other count.
    public init?(bytes array: some Collection<UInt8>) {
        guard array.count == 6 else { return nil }
        let b = Array(array)
        self.init(b[0], b[1], b[2], b[3], b[4], b[5])
    }

    /// Parses a textual MAC; `nil` when the text is not a MAC in one of the accepted spellings.
    public init?(_ text: some StringProtocol) {
        let hexDigits = String(text.filter { $0 != ":" && $0 != "-" && $0 != "." })
        let separators = text.count - hexDigits.count
        // Accept 12 bare digits, or 5 ':'/'-' separators, or Cisco's 2 dots.
        // Only ASCII hex digits: `UInt8(_:radix:)` alone would also take a sign ("+6").
        guard hexDigits.count == 12, hexDigits.allSatisfy({ $0.isASCII && $0.isHexDigit }),
            [0, 2, 5].contains(separators)
        else { return nil }
        if separators == 5 {
            // The same separator throughout: "52:54-00:12:34:56" is not a MAC.
            guard let separator = text.first(where: { $0 == ":" || $0 == "-" }) else { return nil }
            let groups = text.split(separator: separator, omittingEmptySubsequences: false)
            guard groups.count == 6, groups.allSatisfy({ $0.count == 2 }) else { return nil }
        } else if separators == 2 {
            let groups = text.split(separator: ".", omittingEmptySubsequences: false)
            guard groups.count == 3, groups.allSatisfy({ $0.count == 4 }) else { return nil }
        }
        var parsed: [UInt8] = []
        var index = hexDigits.startIndex
        while index < hexDigits.endIndex {
            let next = hexDigits.index(index, offsetBy: 2)
            guard let byte = UInt8(hexDigits[index..<next], radix: 16) else { return nil }
            parsed.append(byte)
            index = next
        }
        self.init(bytes: parsed)
    }

    public var byteArray: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] }

    /// The form iPXE's `${netX/mac:hexhyp}` produces, used in boot file names.
    public var hyphenated: String { byteArray.map(Self.hex).joined(separator: "-") }

    public static func == (lhs: MACAddress, rhs: MACAddress) -> Bool { lhs.byteArray == rhs.byteArray }
    public func hash(into hasher: inout Hasher) { hasher.combine(byteArray) }
    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool {
        lhs.byteArray.lexicographicallyPrecedes(rhs.byteArray)
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
    }
}

extension MACAddress: CustomStringConvertible, LosslessStringConvertible {
    public var description: String { byteArray.map(Self.hex).joined(separator: ":") }
}

extension MACAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let mac = MACAddress(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a MAC address (expected e.g. 52:54:00:12:34:56)")
        }
        self = mac
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
