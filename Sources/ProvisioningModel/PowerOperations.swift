import Foundation
import NetworkPrimitives

/// Power commands as recorded operations: finds each machine's BMC, unseals its password, runs the
/// command through `PowerControl`, and records the outcome (operation log and a `powerAction` event)
/// in one write. Bulk requests run at most `concurrency` at a time; one failing BMC fails only its
/// own machine. A machine without a BMC gets the manual driver: an `operatorAction` event asks a
/// person to do it, and the outcome says so.
public struct PowerOperations: Sendable {
    public enum Command: Sendable, Hashable {
        case power(PowerAction)
        case boot(BootOverride)

        /// The operation's name in the log: `on`, `cycle`…, `boot-pxe`, `boot-disk`.
        public var name: String {
            switch self {
            case .power(let action): action.rawValue
            case .boot(let boot): "boot-\(boot.device.rawValue)"
            }
        }

        /// The power state a successful command leaves the machine in, for drift detection.
        var expectedPower: PowerState? {
            switch self {
            case .power(.on), .power(.cycle), .power(.reset): .on
            case .power(.off), .power(.softOff): .off
            default: nil
            }
        }
    }

    /// One machine's result in a (bulk) request.
    public struct Result: Codable, Sendable, Hashable {
        public var machine: ObjectID
        public var name: String
        public var action: String
        public var outcome: PowerOperationRecord.Outcome
        public var state: PowerState?
        public var message: String?
        public var milliseconds: Int
    }

    public let store: any InventoryStore
    public let power: any PowerControl
    public let secrets: SecretBox
    public var concurrency: Int
    public var now: @Sendable () -> Date = { Date() }

    public init(store: any InventoryStore, power: any PowerControl, secrets: SecretBox, concurrency: Int = 16) {
        self.store = store
        self.power = power
        self.secrets = secrets
        self.concurrency = max(1, concurrency)
    }

    // MARK: BMC records

    /// Problems with a BMC before it is stored (the password itself is never echoed).
    public static func validate(_ endpoint: BMCEndpoint) -> [ValidationProblem] {
        var report = ValidationReport()
        report.check(
            !endpoint.address.isEmpty && !endpoint.address.contains(where: \.isWhitespace), "address",
            "must be a host name or IP address")
        report.check((1...65535).contains(endpoint.port), "port", "must be 1-65535, got \(endpoint.port)")
        report.check(!endpoint.username.isEmpty, "username", "must not be empty")
        report.check(!endpoint.password.isEmpty, "password", "must not be empty")
        report.check(
            BMCEndpoint.allowedCipherSuites.contains(endpoint.cipherSuite), "cipherSuite",
            "cipher suite \(endpoint.cipherSuite) is not allowed: use 17, or 3 for BMCs without 17")
        for (index, name) in endpoint.workarounds.enumerated() where !BMCEndpoint.knownWorkarounds.contains(name) {
            report.add(
                "workarounds[\(index)]",
                "unknown workaround '\(name)' (one of \(BMCEndpoint.knownWorkarounds.sorted().joined(separator: ", ")))")
        }
        return report.problems
    }

    public func attachBMC(_ endpoint: BMCEndpoint, to machine: ObjectID) async throws {
        let problems = Self.validate(endpoint)
        guard problems.isEmpty else { throw InventoryError.invalid(problems) }
        try await store.saveBMCCredential(
            StoredBMCCredential(
                machine: machine, address: endpoint.address, port: endpoint.port, username: endpoint.username,
                sealedPassword: try secrets.seal(endpoint.password), cipherSuite: endpoint.cipherSuite,
                workarounds: endpoint.workarounds,
                updatedAt: now()))
    }

    /// Stores credentials for every BMC in `network` (validated like a single BMC's; the address is the network's).
    public func saveCredentialSet(name: String, network: String, endpoint: BMCEndpoint) async throws {
        var problems = Self.validate(endpoint).filter { $0.field != "address" }
        var report = ValidationReport()
        report.checkName(name)
        problems += report.problems
        let parsed = IPv4Network(network)
        if parsed == nil {
            problems.append(
                ValidationProblem(field: "network", message: "'\(network)' is not an IPv4 network such as 10.0.9.0/24"))
        }
        guard let parsed, problems.isEmpty else { throw InventoryError.invalid(problems) }
        try await store.saveBMCCredentialSet(
            StoredBMCCredentialSet(
                name: name, network: parsed, port: endpoint.port, username: endpoint.username,
                sealedPassword: try secrets.seal(endpoint.password),
                cipherSuite: endpoint.cipherSuite, workarounds: endpoint.workarounds, updatedAt: now()))
    }

    /// Gives a machine without a BMC the credentials of the first set (by name) whose network holds
    /// the BMC address its agent reported, noting `bmcAttached`. Returns the set's name when it did.
    @discardableResult
    public func attachFromFacts(_ facts: HardwareFacts, machine: ObjectID, actor: String) async throws -> String? {
        guard let text = facts.bmc?.address, let address = IPv4Address(text),
            let set = try await store.bmcCredentialSets().first(where: { $0.network.contains(address) })
        else { return nil }
        let credential = StoredBMCCredential(
            machine: machine, address: text, port: set.port, username: set.username, sealedPassword: set.sealedPassword,
            cipherSuite: set.cipherSuite, workarounds: set.workarounds, updatedAt: now())
        let note = InventoryNote(
            action: .bmcAttached, kind: .machine, key: machine.description,
            detail: .object([
                "address": .string(text), "credentialSet": .string(set.name),
                "message": .string("BMC \(text):\(set.port) attached from credential set \(set.name)"),
            ]))
        return try await store.attachBMCCredentialIfAbsent(credential, notes: [note], actor: actor) ? set.name : nil
    }

    public func endpoint(of credential: StoredBMCCredential) throws -> BMCEndpoint {
        BMCEndpoint(
            address: credential.address, port: credential.port, username: credential.username,
            password: try secrets.open(credential.sealedPassword), cipherSuite: credential.cipherSuite,
            workarounds: credential.workarounds)
    }

    // MARK: Commands

    /// Runs `command` on every machine (at most `concurrency` at once); results in the order asked.
    public func run(_ command: Command, on machines: [Stored<Machine>], actor: String) async -> [Result] {
        await forEach(Array(machines.enumerated())) { index, machine in (index, await runOne(command, on: machine, actor: actor))
        }
        .sorted { $0.0 < $1.0 }.map(\.1)
    }

    private func runOne(_ command: Command, on machine: Stored<Machine>, actor: String) async -> Result {
        let id = machine.object.id
        let started = now()
        var outcome = PowerOperationRecord.Outcome.success
        var state: PowerState?
        var message: String?
        var notes: [InventoryNote] = []
        do {
            if let credential = try await store.bmcCredential(machine: id) {
                let endpoint = try endpoint(of: credential)
                switch command {
                case .power(let action): state = try await power.perform(action, on: endpoint)
                case .boot(let boot): try await power.setNextBoot(boot, on: endpoint)
                }
            } else {
                outcome = .manual
                message = "\(machine.object.name) has no BMC: \(command.name) it by hand"
                notes.append(
                    InventoryNote(
                        action: .operatorAction, kind: .machine, key: id.description,
                        detail: .object(["request": .string(command.name), "message": .string(message ?? "")])))
            }
        } catch let error as PowerError {
            outcome = PowerOperationRecord.Outcome(error.code)
            message = error.description
        } catch {
            outcome = .failed
            message = "\(error)"
        }
        let record = PowerOperationRecord(
            machine: id, action: command.name, requestedBy: actor, startedAt: started, finishedAt: now(), outcome: outcome,
            state: state,
            message: message)
        if let detail = try? JSONValue(encoding: record) {
            notes.insert(InventoryNote(action: .powerAction, kind: .machine, key: id.description, detail: detail), at: 0)
        }
        do {
            try await store.recordPowerOperation(
                record, expectedPower: outcome == .success ? command.expectedPower : nil, notes: notes)
        } catch {
            message = [message, "the result could not be recorded: \(error)"].compactMap { $0 }.joined(separator: "; ")
        }
        return Result(
            machine: id, name: machine.object.name, action: command.name, outcome: outcome, state: state, message: message,
            milliseconds: Int(record.finishedAt.timeIntervalSince(started) * 1000))
    }

    // MARK: Sensors

    /// Reads the machine's sensors now and keeps them as its latest readings.
    public func readSensors(of machine: ObjectID) async throws -> SensorSnapshot {
        guard let credential = try await store.bmcCredential(machine: machine) else {
            throw InventoryError.notFound(what: "BMC for machine", key: machine.description)
        }
        let snapshot = SensorSnapshot(
            machine: machine, readAt: now(), readings: try await power.sensors(of: try endpoint(of: credential)))
        try await store.saveSensorSnapshot(snapshot)
        return snapshot
    }

    // MARK: Periodic work

    /// Asks every BMC for its power state at most `concurrency` at a time, keeps what it saw, and
    /// notes `powerDrift` where a machine is not in the state its last command left it. Returns the drifted machines.
    @discardableResult
    public func syncPowerStates(actor: String = "power-sync") async throws -> [ObjectID] {
        let credentials = try await store.bmcCredentials()
        return await forEach(credentials) { credential -> ObjectID? in
            guard let state = try? await power.perform(.status, on: try endpoint(of: credential)) ?? nil else { return nil }
            var notes: [InventoryNote] = []
            if let expected = credential.expectedPower, expected != state {
                notes.append(
                    InventoryNote(
                        action: .powerDrift, kind: .machine, key: credential.machine.description,
                        detail: .object(["expected": .string(expected.rawValue), "observed": .string(state.rawValue)])))
            }
            try? await store.recordPowerObservation(
                machine: credential.machine, state: state, at: now(), notes: notes, actor: actor)
            return notes.isEmpty ? nil : credential.machine
        }
    }

    /// Reads every BMC's sensors (at most `concurrency` at a time) into the machines' latest readings;
    /// returns how many machines were read.
    @discardableResult
    public func pollSensors() async throws -> Int {
        let credentials = try await store.bmcCredentials()
        return await forEach(credentials) { credential -> Bool? in
            (try? await readSensors(of: credential.machine)) == nil ? nil : true
        }.count
    }

    /// Runs `body` over `items` with at most `concurrency` in flight; keeps the non-nil results.
    private func forEach<Item: Sendable, Output: Sendable>(
        _ items: [Item], _ body: @escaping @Sendable (Item) async -> Output?
    ) async
        -> [Output]
    {
        await withTaskGroup(of: Output?.self) { group in
            var outputs: [Output] = []
            var iterator = items.makeIterator()
            for _ in 0..<concurrency {
                guard let item = iterator.next() else { break }
                group.addTask { await body(item) }
            }
            while let output = await group.next() {
                if let output { outputs.append(output) }
                if let item = iterator.next() { group.addTask { await body(item) } }
            }
            return outputs
        }
    }
}
