import NetworkPrimitives

/// A readable, deterministic rendering of a message: one line per fixed field, then one line per option in order.
/// Used for golden files and logs, so it never throws: a value its type's reader rejects is shown as hex
/// with the reason.
extension DHCPMessage: CustomDebugStringConvertible {
    public var debugDescription: String { dump() }

    public func dump() -> String {
        var lines = [
            "op: \(operation)(\(operation.rawValue))",
            "htype: \(hardwareType)",
            "hlen: \(hardwareAddressLength)",
            "hops: \(hops)",
            "xid: 0x\(Self.hex(transactionID.bigEndianBytes))",
            "secs: \(seconds)",
            "flags: 0x\(Self.hex(flags.bigEndianBytes))\(isBroadcast ? " (broadcast)" : "")",
            "ciaddr: \(clientAddress)",
            "yiaddr: \(yourAddress)",
            "siaddr: \(serverAddress)",
            "giaddr: \(relayAgentAddress)",
            "chaddr: \(chaddrText)",
            "sname: \(Self.fieldText(serverNameField))",
            "file: \(Self.fieldText(bootFileField))",
        ]
        for (code, value) in options {
            lines.append("\(code): \(Self.optionText(code, value, in: options))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The MAC when the hardware is Ethernet, else the `hlen` bytes; bytes past them are shown only when not zero.
    private var chaddrText: String {
        let length = min(Int(hardwareAddressLength), clientHardwareAddress.count)
        var text = clientMAC?.description ?? Self.hex(clientHardwareAddress.prefix(length))
        let rest = clientHardwareAddress.dropFirst(length)
        if rest.contains(where: { $0 != 0 }) { text += " (padding \(Self.hex(rest)))" }
        return text
    }

    /// `sname`/`file`: the text up to the first NUL, quoted; anything after that NUL is shown only when not zero.
    private static func fieldText(_ field: [UInt8]) -> String {
        let text = field.prefix { $0 != 0 }
        let rest = field.dropFirst(text.count)
        var result = quoted(text)
        if rest.contains(where: { $0 != 0 }) { result += " (after NUL \(hex(rest)))" }
        return result
    }

    private static func optionText(_ code: DHCPOptionCode, _ value: [UInt8], in options: DHCPOptions) -> String {
        if value.isEmpty { return "(empty)" }
        do {
            switch code.rawValue {
            case 53:
                return try options.messageType().map { "\($0)" } ?? hex(value)
            case 1, 28, 50, 54:
                return try options.address(code).map(\.description) ?? hex(value)
            case 3, 6, 42:
                return try options.addresses(code).map { $0.map(\.description).joined(separator: ", ") } ?? hex(value)
            case 51, 58, 59:
                return try options.uint32(code).map { "\($0) s" } ?? hex(value)
            case 57:
                return try options.uint16(code).map { "\($0)" } ?? hex(value)
            case 12, 15, 56, 60, 66, 67:
                return quoted(value)
            case 55:
                return value.map(String.init).joined(separator: " ")
            case 61:
                return clientIdentifierText(value)
            case 77:
                return options.userClasses.map { quoted(Array($0.utf8)) }.joined(separator: ", ")
            case 93:
                return try options.clientArchitectures().map { $0.map(\.description).joined(separator: ", ") } ?? hex(value)
            case 94:
                // RFC 4578 §2.2: type 1 (UNDI), major, minor.
                guard value.count == 3 else { return "\(hex(value)) (malformed: expected 3 bytes)" }
                return value[0] == 1 ? "undi \(value[1]).\(value[2])" : "type \(value[0]) \(value[1]).\(value[2])"
            case 97:
                return try options.clientMachineIdentifier() ?? hex(value)
            case 43, 82, 175:
                guard let subOptions = try options.encapsulated(code) else { return hex(value) }
                return subOptions.map { "\($0.code.rawValue)=\($0.value.isEmpty ? "(empty)" : hex($0.value))" }
                    .joined(separator: " ")
            default:
                return hex(value)
            }
        } catch let error as DHCPDecodeError {
            guard case .badOptionValue(_, let reason) = error else { return "\(hex(value)) (malformed: \(error))" }
            return "\(hex(value)) (malformed: \(reason))"
        } catch {
            return "\(hex(value)) (malformed: \(error))"
        }
    }

    /// RFC 2132 §9.14 / RFC 4361: type 1 + MAC is shown as a MAC, type 255 as IAID and DUID.
    private static func clientIdentifierText(_ value: [UInt8]) -> String {
        if value.count == 7, value[0] == 1, let mac = MACAddress(bytes: value.dropFirst()) { return "ethernet \(mac)" }
        if value.count > 5, value[0] == 255 {
            return "iaid \(hex(value[1..<5])) duid \(hex(value.dropFirst(5)))"
        }
        return hex(value)
    }

    /// Printable ASCII as is, everything else as `\xNN`, so a dump is one line and the same on every platform.
    private static func quoted(_ bytes: some Collection<UInt8>) -> String {
        var text = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
            case 0x20..<0x7f: text += String(UnicodeScalar(byte))
            default: text += "\\x" + String(byte, radix: 16).leftPadded(to: 2)
            }
        }
        return text + "\""
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

extension FixedWidthInteger {
    fileprivate var bigEndianBytes: [UInt8] {
        (0..<(Self.bitWidth / 8)).reversed().map { UInt8(truncatingIfNeeded: self >> ($0 * 8)) }
    }
}
