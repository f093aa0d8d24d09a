import NetworkPrimitives

/// The options of a message, in the order they first appeared. A code appears once: repeated
/// instances are concatenated on decode (RFC 3396) and values over 255 bytes are split on encode.
public struct DHCPOptions: Hashable, Sendable, Sequence {
    private var entries: [(code: DHCPOptionCode, value: [UInt8])] = []

    public init() {}

    public init(_ pairs: [(DHCPOptionCode, [UInt8])]) {
        for (code, value) in pairs { append(code, value) }
    }

    public subscript(code: DHCPOptionCode) -> [UInt8]? {
        get { entries.first { $0.code == code }?.value }
        set {
            if let index = entries.firstIndex(where: { $0.code == code }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append((code, newValue))
            }
        }
    }

    /// Adds bytes to an option, concatenating with an earlier instance (RFC 3396).
    public mutating func append(_ code: DHCPOptionCode, _ value: [UInt8]) {
        if let index = entries.firstIndex(where: { $0.code == code }) {
            entries[index].value += value
        } else {
            entries.append((code, value))
        }
    }

    public var codes: [DHCPOptionCode] { entries.map(\.code) }
    public var isEmpty: Bool { entries.isEmpty }

    public func makeIterator() -> some IteratorProtocol<(code: DHCPOptionCode, value: [UInt8])> { entries.makeIterator() }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.entries.count == rhs.entries.count && zip(lhs.entries, rhs.entries).allSatisfy { $0.code == $1.code && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.code)
            hasher.combine(entry.value)
        }
    }
}

/// Typed reading and writing of the options netboot cares about. Readers return `nil` when the option
/// is absent and throw `DHCPDecodeError.badOptionValue` when it is present but malformed.
extension DHCPOptions {
    public func messageType() throws -> DHCPMessageType? {
        guard let value = self[.messageType] else { return nil }
        guard value.count == 1, let type = DHCPMessageType(rawValue: value[0]) else {
            throw DHCPDecodeError.badOptionValue(code: .messageType, reason: "expected one byte 1-8, got \(value)")
        }
        return type
    }

    public func address(_ code: DHCPOptionCode) throws -> IPv4Address? {
        guard let value = self[code] else { return nil }
        guard value.count == 4 else { throw DHCPDecodeError.badOptionValue(code: code, reason: "expected 4 bytes, got \(value.count)") }
        return IPv4Address(value[0], value[1], value[2], value[3])
    }

    public func addresses(_ code: DHCPOptionCode) throws -> [IPv4Address]? {
        guard let value = self[code] else { return nil }
        guard !value.isEmpty, value.count % 4 == 0 else {
            throw DHCPDecodeError.badOptionValue(code: code, reason: "expected a multiple of 4 bytes, got \(value.count)")
        }
        return stride(from: 0, to: value.count, by: 4).map { IPv4Address(value[$0], value[$0 + 1], value[$0 + 2], value[$0 + 3]) }
    }

    public func uint32(_ code: DHCPOptionCode) throws -> UInt32? {
        guard let value = self[code] else { return nil }
        guard value.count == 4 else { throw DHCPDecodeError.badOptionValue(code: code, reason: "expected 4 bytes, got \(value.count)") }
        return value.reduce(0) { $0 << 8 | UInt32($1) }
    }

    public func uint16(_ code: DHCPOptionCode) throws -> UInt16? {
        guard let value = self[code] else { return nil }
        guard value.count == 2 else { throw DHCPDecodeError.badOptionValue(code: code, reason: "expected 2 bytes, got \(value.count)") }
        return UInt16(value[0]) << 8 | UInt16(value[1])
    }

    /// Text options (hostname, vendor class, bootfile…); trailing NULs some clients send are dropped.
    public func string(_ code: DHCPOptionCode) -> String? {
        guard var value = self[code] else { return nil }
        while value.last == 0 { value.removeLast() }
        return String(decoding: value, as: UTF8.self)
    }

    public var parameterRequestList: [DHCPOptionCode] { (self[.parameterRequestList] ?? []).map { DHCPOptionCode($0) } }

    /// Option 93: one or more 16-bit architecture types.
    public func clientArchitectures() throws -> [ClientArchitecture]? {
        guard let value = self[.clientSystemArchitecture] else { return nil }
        guard !value.isEmpty, value.count % 2 == 0 else {
            throw DHCPDecodeError.badOptionValue(code: .clientSystemArchitecture, reason: "expected pairs of bytes, got \(value.count)")
        }
        return stride(from: 0, to: value.count, by: 2).map { ClientArchitecture(rawValue: UInt16(value[$0]) << 8 | UInt16(value[$0 + 1])) }
    }

    /// Option 97: type 0 followed by a 16-byte UUID (RFC 4578), formatted like SMBIOS shows it
    /// (`/sys/class/dmi/id/product_uuid`, `dmidecode`, QEMU's `-smbios uuid=`).
    ///
    /// Firmware sends the UUID in SMBIOS's in-memory layout, whose first three fields are little-endian:
    /// captures of iPXE and OVMF (PXE and HTTP Boot) given `uuid=4e1f0c2a-6b3d-4c5e-…` all send
    /// `2a 0c 1f 4e 3d 6b 5e 4c …`. Those fields are swapped back so the text matches what the machine reports.
    public func clientMachineIdentifier() throws -> String? {
        guard let value = self[.clientMachineIdentifier] else { return nil }
        guard value.count == 17, value[0] == 0 else {
            throw DHCPDecodeError.badOptionValue(code: .clientMachineIdentifier, reason: "expected type 0 and 16 bytes, got \(value.count) bytes")
        }
        let wire = Array(value.dropFirst())
        let canonical = wire[0..<4].reversed() + wire[4..<6].reversed() + wire[6..<8].reversed() + wire[8...]
        let hex = canonical.map { String($0, radix: 16).leftPadded(to: 2) }
        let groups = [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }
        return groups.joined(separator: "-")
    }

    /// Option 77. RFC 3004 says a list of length-prefixed classes; iPXE and others send one bare string.
    public var userClasses: [String] {
        guard let value = self[.userClass], !value.isEmpty else { return [] }
        var classes: [String] = []
        var index = 0
        while index < value.count {
            let length = Int(value[index])
            guard length > 0, index + 1 + length <= value.count else {
                return [String(decoding: value, as: UTF8.self)]  // not RFC 3004: one bare string
            }
            classes.append(String(decoding: value[(index + 1)..<(index + 1 + length)], as: UTF8.self))
            index += 1 + length
        }
        return classes
    }

    /// Sub-options of an encapsulating option (43 vendor-specific, 82 relay agent, 175 iPXE): code, length, value.
    public func encapsulated(_ code: DHCPOptionCode) throws -> DHCPOptions? {
        guard let value = self[code] else { return nil }
        var buffer = value[...]
        var result = DHCPOptions()
        while let subcode = buffer.first {
            buffer = buffer.dropFirst()
            if subcode == 0 { continue }
            if subcode == 255 { break }
            guard let length = buffer.first.map(Int.init), buffer.count > length else {
                throw DHCPDecodeError.badOptionValue(code: code, reason: "sub-option \(subcode) runs past the end")
            }
            result.append(DHCPOptionCode(subcode), Array(buffer.dropFirst().prefix(length)))
            buffer = buffer.dropFirst(1 + length)
        }
        return result
    }

    // MARK: Writing

    public mutating func set(_ code: DHCPOptionCode, address: IPv4Address) { self[code] = address.octets }
    public mutating func set(_ code: DHCPOptionCode, addresses: [IPv4Address]) { self[code] = addresses.flatMap(\.octets) }
    public mutating func set(_ code: DHCPOptionCode, string: String) { self[code] = Array(string.utf8) }
    public mutating func set(_ code: DHCPOptionCode, uint32: UInt32) {
        self[code] = [UInt8(uint32 >> 24), UInt8(truncatingIfNeeded: uint32 >> 16), UInt8(truncatingIfNeeded: uint32 >> 8), UInt8(truncatingIfNeeded: uint32)]
    }
    public mutating func set(messageType: DHCPMessageType) { self[.messageType] = [messageType.rawValue] }

    /// Encodes sub-options for an encapsulating option.
    public static func encapsulate(_ options: DHCPOptions) -> [UInt8] {
        options.flatMap { entry in [entry.code.rawValue, UInt8(entry.value.count)] + entry.value }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
