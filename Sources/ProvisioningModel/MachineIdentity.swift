import Foundation
import NetworkPrimitives

/// Who a calling machine says it is.
public struct IdentityClaim: Sendable, Hashable {
    public var systemUUID: String?
    public var serial: String?
    public var macs: [MACAddress]

    /// Placeholders are dropped here, so matching never joins two machines on "Default string".
    public init(systemUUID: String?, serial: String?, macs: [MACAddress]) {
        self.systemUUID = MachineIdentity.usableUUID(systemUUID)
        self.serial = MachineIdentity.usableSerial(serial)
        self.macs = macs
    }

    public init(facts: HardwareFacts, macs: [MACAddress]) {
        self.init(systemUUID: facts.systemUUID, serial: facts.systemSerial, macs: macs)
    }
}

/// What matched a claim to a stored machine, strongest first.
public enum IdentityEvidence: String, Codable, Sendable, Hashable {
    case systemUUID, serial, mac
}

/// The outcome of matching a claim against the machines that share any part of it.
public enum IdentityMatch: Sendable, Hashable {
    /// Nothing stored shares the claim's UUID, serial or MACs.
    case new
    case known(ObjectID, by: IdentityEvidence)
    /// The claim points at more than one machine, or contradicts the one it points at.
    /// Reported to an operator, never merged.
    case conflict(String, machines: [ObjectID])
}

/// Matching a calling machine to the inventory: system UUID, then serial, then MACs.
/// A MAC alone is a hint: it identifies a machine only when nothing stronger contradicts it.
public enum MachineIdentity {
    /// Machines that share any part of `claim`, the only ones `match` needs to see.
    public static func match(_ claim: IdentityClaim, candidates: [Machine]) -> IdentityMatch {
        let claimed = Set(claim.macs)
        let macOwners = candidates.filter { !claimed.isDisjoint(with: $0.macAddresses) }

        // Every MAC of the claim must belong to the machine found, or to nobody.
        func confirmed(_ machine: Machine, by evidence: IdentityEvidence) -> IdentityMatch {
            let others = macOwners.filter { $0.id != machine.id }
            guard others.isEmpty else {
                let macs = others.flatMap { other in other.macAddresses.filter(claimed.contains).map { "\($0) belongs to \(other.name)" } }
                return .conflict(
                    "the caller matches \(machine.name) by \(evidence.rawValue), but \(macs.joined(separator: ", "))",
                    machines: [machine.id] + others.map(\.id))
            }
            return .known(machine.id, by: evidence)
        }

        if let uuid = claim.systemUUID {
            let byUUID = candidates.filter { usableUUID($0.facts.systemUUID) == uuid }
            if byUUID.count > 1 {
                return .conflict("system UUID \(uuid) is recorded on \(names(byUUID))", machines: byUUID.map(\.id))
            }
            if let machine = byUUID.first { return confirmed(machine, by: .systemUUID) }
        }
        if let serial = claim.serial {
            // A machine with another real UUID is another machine that happens to share the serial.
            let bySerial = candidates.filter {
                usableSerial($0.facts.systemSerial) == serial
                    && (claim.systemUUID == nil || usableUUID($0.facts.systemUUID) == nil)
            }
            if bySerial.count > 1 {
                return .conflict("serial \(serial) is recorded on \(names(bySerial))", machines: bySerial.map(\.id))
            }
            if let machine = bySerial.first { return confirmed(machine, by: .serial) }
        }
        switch macOwners.count {
        case 0:
            return .new
        case 1:
            let machine = macOwners[0]
            if let stored = usableUUID(machine.facts.systemUUID), let uuid = claim.systemUUID {
                return .conflict(
                    "the caller has the MACs of \(machine.name) but system UUID \(uuid), not \(stored) (a replaced board? clear facts.systemUUID of \(machine.name) to accept it)",
                    machines: [machine.id])
            }
            if let stored = usableSerial(machine.facts.systemSerial), let serial = claim.serial {
                return .conflict(
                    "the caller has the MACs of \(machine.name) but serial \(serial), not \(stored)", machines: [machine.id])
            }
            return .known(machine.id, by: .mac)
        default:
            return .conflict("the caller's MACs belong to \(names(macOwners))", machines: macOwners.map(\.id))
        }
    }

    /// SMBIOS UUIDs that firmware ships unset or identical on every board of a model.
    public static func usableUUID(_ value: String?) -> String? {
        guard let value, let uuid = UUID(uuidString: value.trimmingCharacters(in: .whitespaces)) else { return nil }
        let text = uuid.uuidString.lowercased()
        let placeholders: Set<String> = [
            "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "03000200-0400-0500-0006-000700080009",  // common on boards that never had one programmed
        ]
        return placeholders.contains(text) ? nil : text
    }

    /// Serial numbers that are really "not filled in".
    public static func usableSerial(_ value: String?) -> String? {
        guard let trimmed = value?.trimmingCharacters(in: .whitespaces), !trimmed.isEmpty else { return nil }
        let placeholders: Set<String> = [
            "to be filled by o.e.m.", "default string", "system serial number", "not specified", "none", "n/a",
            "0", "0123456789", "123456789", "not applicable", "chassis serial number", "unknown",
        ]
        return placeholders.contains(trimmed.lowercased()) ? nil : trimmed
    }

    private static func names(_ machines: [Machine]) -> String { machines.map(\.name).sorted().joined(separator: " and ") }
}
