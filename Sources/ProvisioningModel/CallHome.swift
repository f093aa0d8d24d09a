import Foundation
import NetworkPrimitives

/// What the agent posts to `/api/v1/machines/callhome`.
public struct CallHomeReport: Codable, Sendable, Hashable {
    public var facts: HardwareFacts
    /// The NIC the machine network-booted from (from `BOOTIF=`), when known.
    public var bootMAC: MACAddress?
    public var architecture: Architecture?

    public init(facts: HardwareFacts, bootMAC: MACAddress? = nil, architecture: Architecture? = nil) {
        self.facts = facts
        self.bootMAC = bootMAC
        self.architecture = architecture
    }

    /// The report with the forms that identity matching and filters rely on: UUIDs in lowercase.
    var normalized: CallHomeReport {
        var report = self
        report.facts.systemUUID = facts.systemUUID.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return report
    }

    func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.merge(facts.validate(), under: "facts")
        report.check(!facts.nics.isEmpty, "facts.nics", "a call-home lists at least one NIC (its MAC identifies the machine)")
        var seen: Set<MACAddress> = []
        for (index, nic) in facts.nics.enumerated() {
            report.check(seen.insert(nic.mac).inserted, "facts.nics[\(index)].mac", "\(nic.mac) is listed twice")
        }
        if let bootMAC {
            report.check(seen.contains(bootMAC), "bootMAC", "\(bootMAC) is not one of the reported NICs")
        }
        return report.problems
    }
}

/// How a call-home ended, for the HTTP layer to answer and the agent to act on.
public enum CallHomeOutcome: Sendable {
    /// A machine seen for the first time.
    case discovered(Machine)
    /// A known machine; `changes` is empty when its hardware is as last reported.
    case updated(Machine, changes: [FactChange])
    /// The caller matches a known machine but brought no token for it: only unknown machines may
    /// call home unauthenticated. `machine` names the match, for the error message.
    case tokenRequired(machine: String)
    /// The identity points at several machines or contradicts one; recorded as an event.
    case conflict(String)
}

/// Call-home intake: matches the caller to the inventory, creates or updates the machine, and
/// notes what happened in the event log (discovered, facts changed, identity conflict).
public struct CallHomeIntake: Sendable {
    public let store: any InventoryStore
    /// When a machine created by a call-home may repeat it without a token: the agent's retry of a
    /// request whose answer it never got. Only a repeat with identical facts counts.
    public var retryWindow: TimeInterval = 600
    public var now: @Sendable () -> Date = { Date() }

    static let actor = "callhome"

    public init(store: any InventoryStore) {
        self.store = store
    }

    /// `authenticatedAs`: the machine whose token came with the request, if any.
    public func receive(_ report: CallHomeReport, authenticatedAs tokenMachine: ObjectID?) async throws -> CallHomeOutcome {
        let problems = report.validate()
        guard problems.isEmpty else { throw InventoryError.invalid(problems) }
        let report = report.normalized
        // Concurrent call-homes of one machine race on its MACs; the loser matches the winner's row.
        for attempt in 1...3 {
            do {
                return try await attemptReceive(report, tokenMachine: tokenMachine)
            } catch InventoryError.alreadyExists where attempt < 3 {
                continue
            } catch InventoryError.revisionMismatch where attempt < 3 {
                continue
            }
        }
        throw InventoryError.storage("call-home did not settle after 3 attempts")
    }

    private func attemptReceive(_ report: CallHomeReport, tokenMachine: ObjectID?) async throws -> CallHomeOutcome {
        let macs = report.facts.nics.map(\.mac)
        let claim = IdentityClaim(facts: report.facts, macs: macs)
        let candidates = try await candidates(for: claim)
        let match = MachineIdentity.match(claim, candidates: candidates.map(\.object))

        let target: Stored<Machine>?
        switch (match, tokenMachine) {
        case (.conflict(let message, let machines), _):
            return try await conflict(message, machines: machines)
        case (.new, nil):
            return try await discover(report)
        case (.known(let id, _), nil):
            let known = candidates.first { $0.object.id == id }!
            guard isRetryOfCreation(known, report: report) else { return .tokenRequired(machine: known.object.name) }
            return .updated(known.object, changes: [])
        case (.new, let id?):
            // A machine registered by hand with no MAC the agent reports yet: the token decides.
            target = try await store.fetch(Machine.self, key: id.description)
        case (.known(let id, _), let tokenID?):
            guard id == tokenID else {
                let other = candidates.first { $0.object.id == id }!.object.name
                return try await conflict(
                    "the caller's token is for machine \(tokenID), but its hardware is that of \(other)", machines: [tokenID, id])
            }
            target = candidates.first { $0.object.id == id }
        }
        guard let target else { throw InventoryError.notFound(what: "machine", key: tokenMachine?.description ?? "") }
        return try await update(target, with: report)
    }

    /// Every stored machine sharing the claim's UUID, serial or a MAC (indexed look-ups).
    private func candidates(for claim: IdentityClaim) async throws -> [Stored<Machine>] {
        var filters: [ListFilter] = claim.macs.map { ListFilter(field: "mac", value: $0.description) }
        if let uuid = claim.systemUUID { filters.append(ListFilter(field: "uuid", value: uuid)) }
        if let serial = claim.serial { filters.append(ListFilter(field: "serial", value: serial)) }
        var found: [String: Stored<Machine>] = [:]
        for filter in filters {
            for item in try await store.list(Machine.self, filters: [filter], after: nil, limit: 16).items {
                found[item.object.key] = item
            }
        }
        return found.values.sorted { $0.object.key < $1.object.key }
    }

    private func discover(_ report: CallHomeReport) async throws -> CallHomeOutcome {
        let bootMAC = report.bootMAC ?? report.facts.nics[0].mac
        var machine = Machine(
            name: "d" + bootMAC.description.replacingOccurrences(of: ":", with: ""), state: .discovered,
            architecture: report.architecture ?? .amd64, bootEnv: "discovery", facts: report.facts,
            interfaces: Self.interfaces(report))
        let discovered = try await store.create(
            machine, actor: Self.actor,
            notes: [InventoryNote(action: .discovered, kind: .machine, key: machine.key, detail: Self.summary(report.facts))])
        // No default workflow is configured yet (there is no workflow engine): discovery done is ready.
        machine.state = .ready
        let ready = try await store.replace(machine, expectedRevision: discovered.meta.revision, actor: Self.actor)
        return .discovered(ready.object)
    }

    private func update(_ stored: Stored<Machine>, with report: CallHomeReport) async throws -> CallHomeOutcome {
        var machine = stored.object
        let hadFacts = machine.facts != HardwareFacts()
        let changes = hadFacts ? report.facts.changes(since: machine.facts) : []
        machine.facts = report.facts
        machine.interfaces = Self.interfaces(report)
        if let architecture = report.architecture { machine.architecture = architecture }
        // A reboot reports the same hardware: nothing to write, and nothing in the history.
        guard machine != stored.object else { return .updated(machine, changes: []) }
        var notes: [InventoryNote] = []
        if !hadFacts {
            notes.append(InventoryNote(action: .discovered, kind: .machine, key: machine.key, detail: Self.summary(report.facts)))
        } else if !changes.isEmpty {
            notes.append(
                InventoryNote(
                    action: .factsChanged, kind: .machine, key: machine.key,
                    detail: .object(["changes": .array(changes.map(Self.json))])))
        }
        let saved = try await store.replace(machine, expectedRevision: stored.meta.revision, actor: Self.actor, notes: notes)
        return .updated(saved.object, changes: changes)
    }

    private func conflict(_ message: String, machines: [ObjectID]) async throws -> CallHomeOutcome {
        try await store.record(
            machines.map {
                InventoryNote(
                    action: .identityConflict, kind: .machine, key: $0.description,
                    detail: .object(["message": .string(message), "machines": .array(machines.map { .string($0.description) })]))
            },
            actor: Self.actor)
        return .conflict(message)
    }

    /// The agent retried a call-home that created this machine moments ago and never got the answer.
    private func isRetryOfCreation(_ stored: Stored<Machine>, report: CallHomeReport) -> Bool {
        stored.meta.revision <= 2 && stored.object.facts == report.facts && now().timeIntervalSince(stored.meta.createdAt) < retryWindow
    }

    private static func interfaces(_ report: CallHomeReport) -> [NetworkInterface] {
        let bootMAC = report.bootMAC ?? report.facts.nics[0].mac
        return report.facts.nics.map { nic in
            NetworkInterface(mac: nic.mac, name: nic.name, boot: nic.mac == bootMAC)
        }
    }

    /// A one-glance summary for the discovered event.
    private static func summary(_ facts: HardwareFacts) -> JSONValue {
        var fields: [String: JSONValue] = ["nics": .integer(Int64(facts.nics.count)), "disks": .integer(Int64(facts.disks.count))]
        if let vendor = facts.systemVendor { fields["vendor"] = .string(vendor) }
        if let product = facts.systemProduct { fields["product"] = .string(product) }
        if let serial = facts.systemSerial { fields["serial"] = .string(serial) }
        if let memory = facts.memoryBytes { fields["memoryBytes"] = .integer(memory) }
        return .object(fields)
    }

    private static func json(_ change: FactChange) -> JSONValue {
        var fields: [String: JSONValue] = ["field": .string(change.field), "summary": .string(change.description)]
        if let before = change.before { fields["before"] = .string(before) }
        if let after = change.after { fields["after"] = .string(after) }
        return .object(fields)
    }
}
