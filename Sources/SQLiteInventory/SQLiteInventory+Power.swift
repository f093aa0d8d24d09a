import Foundation
import GRDB
import NetworkPrimitives
import ProvisioningModel

/// BMC credentials, the power operation log and sensor snapshots. Rows belong to their machine and
/// go with it (ON DELETE CASCADE).
extension SQLiteInventory {
    public func saveBMCCredential(_ credential: StoredBMCCredential) async throws {
        let workarounds = String(decoding: try JSONEncoder().encode(credential.workarounds), as: UTF8.self)
        try await write { db in
            try Self.requireMachine(credential.machine, in: db)
            try db.execute(
                sql: """
                    INSERT INTO bmc_credential (machineKey, address, port, username, sealedPassword, cipherSuite, workarounds,
                        expectedPower, observedPower, observedAt, updatedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (machineKey) DO UPDATE SET address = excluded.address, port = excluded.port,
                        username = excluded.username, sealedPassword = excluded.sealedPassword, cipherSuite = excluded.cipherSuite,
                        workarounds = excluded.workarounds, updatedAt = excluded.updatedAt
                    """,
                arguments: [
                    credential.machine.description, credential.address, credential.port, credential.username,
                    credential.sealedPassword,
                    Int(credential.cipherSuite), workarounds, credential.expectedPower?.rawValue,
                    credential.observedPower?.rawValue,
                    credential.observedAt, credential.updatedAt,
                ])
        }
    }

    public func bmcCredential(machine: ObjectID) async throws -> StoredBMCCredential? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM bmc_credential WHERE machineKey = ?", arguments: [machine.description])
                .map(Self.credential)
        }
    }

    public func bmcCredentials() async throws -> [StoredBMCCredential] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM bmc_credential ORDER BY machineKey").map(Self.credential)
        }
    }

    public func deleteBMCCredential(machine: ObjectID) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM bmc_credential WHERE machineKey = ?", arguments: [machine.description])
            if db.changesCount == 0 { throw InventoryError.notFound(what: "BMC for machine", key: machine.description) }
        }
    }

    public func saveBMCCredentialSet(_ set: StoredBMCCredentialSet) async throws {
        let workarounds = String(decoding: try JSONEncoder().encode(set.workarounds), as: UTF8.self)
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO bmc_credential_set (name, network, port, username, sealedPassword, cipherSuite, workarounds, updatedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET network = excluded.network, port = excluded.port, username = excluded.username,
                        sealedPassword = excluded.sealedPassword, cipherSuite = excluded.cipherSuite, workarounds = excluded.workarounds,
                        updatedAt = excluded.updatedAt
                    """,
                arguments: [
                    set.name, set.network.description, set.port, set.username, set.sealedPassword, Int(set.cipherSuite),
                    workarounds,
                    set.updatedAt,
                ])
        }
    }

    public func bmcCredentialSets() async throws -> [StoredBMCCredentialSet] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM bmc_credential_set ORDER BY name").compactMap { row in
                guard let network = IPv4Network(row["network"] as String) else { return nil }
                return StoredBMCCredentialSet(
                    name: row["name"], network: network, port: row["port"], username: row["username"],
                    sealedPassword: row["sealedPassword"],
                    cipherSuite: UInt8(row["cipherSuite"] as Int),
                    workarounds: try JSONDecoder().decode([String].self, from: Data((row["workarounds"] as String).utf8)),
                    updatedAt: row["updatedAt"])
            }
        }
    }

    public func deleteBMCCredentialSet(name: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM bmc_credential_set WHERE name = ?", arguments: [name])
            if db.changesCount == 0 { throw InventoryError.notFound(what: "BMC credential set", key: name) }
        }
    }

    public func attachBMCCredentialIfAbsent(
        _ credential: StoredBMCCredential, notes: [InventoryNote], actor: String
    ) async throws -> Bool {
        let workarounds = String(decoding: try JSONEncoder().encode(credential.workarounds), as: UTF8.self)
        return try await write { db in
            try Self.requireMachine(credential.machine, in: db)
            try db.execute(
                sql: """
                    INSERT INTO bmc_credential (machineKey, address, port, username, sealedPassword, cipherSuite, workarounds, updatedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (machineKey) DO NOTHING
                    """,
                arguments: [
                    credential.machine.description, credential.address, credential.port, credential.username,
                    credential.sealedPassword,
                    Int(credential.cipherSuite), workarounds, credential.updatedAt,
                ])
            guard db.changesCount == 1 else { return false }
            try ObjectWriter(db: db).appendNotes(notes, actor: actor)
            return true
        }
    }

    public func recordPowerOperation(
        _ operation: PowerOperationRecord, expectedPower: PowerState?, notes: [InventoryNote]
    ) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO power_operation (id, machineKey, action, requestedBy, startedAt, finishedAt, outcome, state, message)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    operation.id.description, operation.machine.description, operation.action, operation.requestedBy,
                    operation.startedAt,
                    operation.finishedAt, operation.outcome.rawValue, operation.state?.rawValue, operation.message,
                ])
            if let expectedPower {
                try db.execute(
                    sql: "UPDATE bmc_credential SET expectedPower = ? WHERE machineKey = ?",
                    arguments: [expectedPower.rawValue, operation.machine.description])
            }
            if let state = operation.state {
                try db.execute(
                    sql: "UPDATE bmc_credential SET observedPower = ?, observedAt = ? WHERE machineKey = ?",
                    arguments: [state.rawValue, operation.finishedAt, operation.machine.description])
            }
            try ObjectWriter(db: db).appendNotes(notes, actor: operation.requestedBy)
        }
    }

    public func powerOperations(machine: ObjectID, limit: Int) async throws -> [PowerOperationRecord] {
        try await read { db in
            // The newest `limit`, returned oldest first like every other history.
            try Row.fetchAll(
                db, sql: "SELECT * FROM power_operation WHERE machineKey = ? ORDER BY startedAt DESC, rowid DESC LIMIT ?",
                arguments: [machine.description, limit]
            ).reversed().map { row in
                PowerOperationRecord(
                    id: ObjectID(row["id"] as String) ?? ObjectID(), machine: machine, action: row["action"],
                    requestedBy: row["requestedBy"],
                    startedAt: row["startedAt"], finishedAt: row["finishedAt"],
                    outcome: PowerOperationRecord.Outcome(rawValue: row["outcome"]) ?? .failed,
                    state: (row["state"] as String?).flatMap(PowerState.init(rawValue:)), message: row["message"])
            }
        }
    }

    public func recordPowerObservation(
        machine: ObjectID, state: PowerState, at time: Date, notes: [InventoryNote], actor: String
    ) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE bmc_credential SET observedPower = ?, observedAt = ? WHERE machineKey = ?",
                arguments: [state.rawValue, time, machine.description])
            try ObjectWriter(db: db).appendNotes(notes, actor: actor)
        }
    }

    public func saveSensorSnapshot(_ snapshot: SensorSnapshot) async throws {
        let readings = String(decoding: try JSONEncoder().encode(snapshot.readings), as: UTF8.self)
        try await write { db in
            try Self.requireMachine(snapshot.machine, in: db)
            try db.execute(
                sql: """
                    INSERT INTO sensor_snapshot (machineKey, readAt, readings) VALUES (?, ?, ?)
                    ON CONFLICT (machineKey) DO UPDATE SET readAt = excluded.readAt, readings = excluded.readings
                    """,
                arguments: [snapshot.machine.description, snapshot.readAt, readings])
        }
    }

    public func sensorSnapshot(machine: ObjectID) async throws -> SensorSnapshot? {
        try await read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM sensor_snapshot WHERE machineKey = ?", arguments: [machine.description])
            else { return nil }
            let readings = try JSONDecoder().decode([SensorReading].self, from: Data((row["readings"] as String).utf8))
            return SensorSnapshot(machine: machine, readAt: row["readAt"], readings: readings)
        }
    }

    private static func requireMachine(_ machine: ObjectID, in db: Database) throws {
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM machine WHERE key = ?", arguments: [machine.description]) == true else {
            throw InventoryError.notFound(what: "machine", key: machine.description)
        }
    }

    private static func credential(_ row: Row) throws -> StoredBMCCredential {
        StoredBMCCredential(
            machine: ObjectID(row["machineKey"] as String) ?? ObjectID(), address: row["address"], port: row["port"],
            username: row["username"], sealedPassword: row["sealedPassword"], cipherSuite: UInt8(row["cipherSuite"] as Int),
            workarounds: try JSONDecoder().decode([String].self, from: Data((row["workarounds"] as String).utf8)),
            expectedPower: (row["expectedPower"] as String?).flatMap(PowerState.init(rawValue:)),
            observedPower: (row["observedPower"] as String?).flatMap(PowerState.init(rawValue:)), observedAt: row["observedAt"],
            updatedAt: row["updatedAt"])
    }
}
