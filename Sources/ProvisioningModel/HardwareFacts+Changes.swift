import Foundation
import NetworkPrimitives

/// One difference between two fact snapshots, in words an operator reads in the machine's history.
public struct FactChange: Codable, Sendable, Hashable, CustomStringConvertible {
    /// `memoryBytes`, `disks[serial D2]`, `nics[52:54:00:00:00:01]`…
    public var field: String
    /// Absent when the part appeared.
    public var before: String?
    /// Absent when the part disappeared.
    public var after: String?

    public init(field: String, before: String?, after: String?) {
        self.field = field
        self.before = before
        self.after = after
    }

    public var description: String {
        switch (before, after) {
        case (nil, let after?): "\(field) appeared: \(after)"
        case (let before?, nil): "\(field) disappeared (was \(before))"
        default: "\(field): \(before ?? "-") → \(after ?? "-")"
        }
    }
}

extension HardwareFacts {
    /// What changed in the hardware since `old`. Readings that change from boot to boot without
    /// the hardware changing (link state, link speed) are left out, so a reboot is never a change.
    public func changes(since old: HardwareFacts) -> [FactChange] {
        var changes: [FactChange] = []
        func scalar<T: Equatable>(_ field: String, _ path: KeyPath<HardwareFacts, T?>, _ show: (T) -> String = { "\($0)" }) {
            let before = old[keyPath: path], after = self[keyPath: path]
            if before != after { changes.append(FactChange(field: field, before: before.map(show), after: after.map(show))) }
        }
        scalar("systemVendor", \.systemVendor)
        scalar("systemProduct", \.systemProduct)
        scalar("systemSerial", \.systemSerial)
        scalar("systemUUID", \.systemUUID)
        scalar("boardVendor", \.boardVendor)
        scalar("boardProduct", \.boardProduct)
        scalar("boardSerial", \.boardSerial)
        scalar("chassisType", \.chassisType)
        scalar("chassisSerial", \.chassisSerial)
        scalar("biosVendor", \.biosVendor)
        scalar("biosVersion", \.biosVersion)
        scalar("cpuModel", \.cpuModel)
        scalar("cpuSockets", \.cpuSockets)
        scalar("cpuCores", \.cpuCores)
        scalar("cpuThreads", \.cpuThreads)
        scalar("memoryBytes", \.memoryBytes, ByteCount.format)

        changes += Self.partChanges("memoryModules", old.memoryModules, memoryModules, identity: \.locator) {
            [ByteCount.format($0.sizeBytes), $0.type, $0.speedMTs.map { "\($0) MT/s" }, $0.serial.map { "serial \($0)" }]
        }
        changes += Self.partChanges("disks", old.disks, disks, identity: { $0.serial.map { "serial \($0)" } ?? $0.wwn ?? $0.name }) {
            [$0.name, ByteCount.format($0.sizeBytes), $0.model]
        }
        changes += Self.partChanges("nics", old.nics, nics, identity: \.mac.description) { [$0.driver, $0.pciAddress] }
        changes += Self.partChanges("pciDevices", old.pciDevices, pciDevices, identity: \.address) {
            ["\($0.vendorID):\($0.deviceID)", "class \($0.classCode)"]
        }
        if old.bmc != bmc {
            func show(_ bmc: BMCFacts?) -> String? {
                bmc.map { [$0.address, $0.mac?.description].compactMap { $0 }.joined(separator: " ") }
            }
            changes.append(FactChange(field: "bmc", before: show(old.bmc), after: show(bmc)))
        }
        return changes
    }

    /// Parts matched by identity: each one that appeared, disappeared or changed its description.
    private static func partChanges<Part>(
        _ field: String, _ old: [Part], _ new: [Part], identity: (Part) -> String, describe: (Part) -> [String?]
    ) -> [FactChange] {
        func described(_ parts: [Part]) -> [String: String] {
            Dictionary(parts.map { (identity($0), describe($0).compactMap { $0 }.joined(separator: ", ")) }, uniquingKeysWith: { first, _ in first })
        }
        let before = described(old), after = described(new)
        return Set(before.keys).union(after.keys).sorted().compactMap { key in
            before[key] == after[key] ? nil : FactChange(field: "\(field)[\(key)]", before: before[key], after: after[key])
        }
    }
}

/// Byte counts as people write them: `64GiB`, `512 MiB`, `2TB`, or plain bytes.
public enum ByteCount {
    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        guard let number = Double(digits), number >= 0 else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let scale: Double? = switch unit {
        case "", "b": 1
        case "k", "kib": 1024
        case "m", "mib": 1024 * 1024
        case "g", "gib": 1024 * 1024 * 1024
        case "t", "tib": 1024 * 1024 * 1024 * 1024
        case "kb": 1e3
        case "mb": 1e6
        case "gb": 1e9
        case "tb": 1e12
        default: nil
        }
        guard let scale, (number * scale) < Double(Int64.max) else { return nil }
        return Int64((number * scale).rounded())
    }

    /// Binary units with one decimal where it matters: `1.5 GiB`, `64 GiB`, `512 MiB`.
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let text = value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
        return "\(text) \(units[unit])"
    }
}
