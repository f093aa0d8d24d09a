/// The sending half of netascii (RFC 764, as TFTP uses it): LF becomes CR LF and CR becomes CR NUL.
/// The rule looks at one byte at a time, so a file can be converted chunk by chunk.
public enum Netascii {
    /// The length of `bytes` once converted.
    public static func encodedLength<Bytes: Sequence<UInt8>>(of bytes: Bytes) -> Int {
        var length = 0
        for byte in bytes { length += (byte == lineFeed || byte == carriageReturn) ? 2 : 1 }
        return length
    }

    /// `bytes` converted.
    public static func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8] {
        var encoded: [UInt8] = []
        encoded.reserveCapacity(bytes.count + bytes.count / 16)
        for byte in bytes {
            switch byte {
            case lineFeed: encoded.append(carriageReturn); encoded.append(lineFeed)
            case carriageReturn: encoded.append(carriageReturn); encoded.append(0)
            default: encoded.append(byte)
            }
        }
        return encoded
    }

    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
}
