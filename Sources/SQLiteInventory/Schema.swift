import GRDB
import ProvisioningModel

/// The database schema. Invariants live here as constraints, so they hold whatever code writes:
/// a MAC belongs to at most one machine, names are unique, states and roles are from their enums,
/// keys agree with the bodies, every body is valid JSON.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            for kind in ObjectKind.allCases {
                try db.execute(sql: objectTable(kind))
            }
            try db.execute(sql: machineConstraints)
            try db.execute(sql: otherConstraints)
            try db.execute(
                sql: """
                    CREATE TABLE reference (
                        fromKind TEXT NOT NULL,
                        fromKey TEXT NOT NULL,
                        field TEXT NOT NULL,
                        toKind TEXT NOT NULL,
                        toKey TEXT NOT NULL,
                        PRIMARY KEY (fromKind, fromKey, field)
                    ) WITHOUT ROWID;
                    CREATE INDEX reference_target ON reference(toKind, toKey);

                    CREATE TABLE event (
                        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
                        time TEXT NOT NULL,
                        action TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
                        kind TEXT NOT NULL,
                        key TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        object TEXT CHECK (object IS NULL OR json_valid(object))
                    );

                    CREATE TABLE api_token (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL UNIQUE,
                        role TEXT NOT NULL CHECK (role IN (\(quotedList(Role.allCases.map(\.rawValue))))),
                        secretHash TEXT NOT NULL UNIQUE CHECK (length(secretHash) = 64),
                        createdAt TEXT NOT NULL,
                        expiresAt TEXT
                    );
                    """)
        }
        // Notes about objects (discovered, facts changed, identity conflict) join the event log,
        // and a machine's history is read by key. SQLite cannot widen a CHECK in place: copy the table.
        // The list is spelled out, not taken from `InventoryEvent.Action`: a migration must not change
        // once shipped, so a new action needs a new migration.
        migrator.registerMigration("v2-event-notes") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event_v2 (
                        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
                        time TEXT NOT NULL,
                        action TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'discovered', 'factsChanged', 'identityConflict')),
                        kind TEXT NOT NULL,
                        key TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        object TEXT CHECK (object IS NULL OR json_valid(object))
                    );
                    INSERT INTO event_v2 SELECT * FROM event;
                    DROP TABLE event;
                    ALTER TABLE event_v2 RENAME TO event;
                    CREATE INDEX event_object ON event(kind, key, cursor);
                    """)
        }
        // What the boot plane served each machine, and what it failed to render, join the history.
        // A copy of v2's rebuild with two more actions, on purpose: shipped migrations are frozen text,
        // so they share no helper that a later change could alter under them.
        migrator.registerMigration("v3-served-files") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event_v3 (
                        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
                        time TEXT NOT NULL,
                        action TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'discovered', 'factsChanged', 'identityConflict',
                            'fileServed', 'renderFailed')),
                        kind TEXT NOT NULL,
                        key TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        object TEXT CHECK (object IS NULL OR json_valid(object))
                    );
                    INSERT INTO event_v3 SELECT * FROM event;
                    DROP TABLE event;
                    ALTER TABLE event_v3 RENAME TO event;
                    CREATE INDEX event_object ON event(kind, key, cursor);
                    """)
        }
        // BMC credentials (password sealed by the caller), the power operation log and the latest sensor
        // readings, each owned by its machine; and the power notes join the event log's actions.
        migrator.registerMigration("v4-power") { db in
            try db.execute(
                sql: """
                    CREATE TABLE bmc_credential (
                        machineKey TEXT PRIMARY KEY NOT NULL REFERENCES machine(key) ON DELETE CASCADE,
                        address TEXT NOT NULL CHECK (length(address) > 0),
                        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
                        username TEXT NOT NULL,
                        sealedPassword BLOB NOT NULL,
                        cipherSuite INTEGER NOT NULL CHECK (cipherSuite IN (3, 17)),
                        workarounds TEXT NOT NULL CHECK (json_valid(workarounds)),
                        expectedPower TEXT CHECK (expectedPower IN ('on', 'off')),
                        observedPower TEXT CHECK (observedPower IN ('on', 'off')),
                        observedAt TEXT,
                        updatedAt TEXT NOT NULL
                    ) WITHOUT ROWID;

                    CREATE TABLE bmc_credential_set (
                        name TEXT PRIMARY KEY NOT NULL,
                        network TEXT NOT NULL,
                        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
                        username TEXT NOT NULL,
                        sealedPassword BLOB NOT NULL,
                        cipherSuite INTEGER NOT NULL CHECK (cipherSuite IN (3, 17)),
                        workarounds TEXT NOT NULL CHECK (json_valid(workarounds)),
                        updatedAt TEXT NOT NULL
                    ) WITHOUT ROWID;

                    CREATE TABLE power_operation (
                        id TEXT PRIMARY KEY NOT NULL,
                        machineKey TEXT NOT NULL REFERENCES machine(key) ON DELETE CASCADE,
                        action TEXT NOT NULL,
                        requestedBy TEXT NOT NULL,
                        startedAt TEXT NOT NULL,
                        finishedAt TEXT NOT NULL,
                        outcome TEXT NOT NULL CHECK (outcome IN ('success', 'authentication-failed', 'unreachable', 'timeout', 'unsupported', 'refused', 'failed', 'manual')),
                        state TEXT CHECK (state IN ('on', 'off')),
                        message TEXT
                    );
                    CREATE INDEX power_operation_machine ON power_operation(machineKey, startedAt);

                    CREATE TABLE sensor_snapshot (
                        machineKey TEXT PRIMARY KEY NOT NULL REFERENCES machine(key) ON DELETE CASCADE,
                        readAt TEXT NOT NULL,
                        readings TEXT NOT NULL CHECK (json_valid(readings))
                    ) WITHOUT ROWID;

                    CREATE TABLE event_v4 (
                        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
                        time TEXT NOT NULL,
                        action TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'discovered', 'factsChanged', 'identityConflict',
                            'fileServed', 'renderFailed', 'powerAction', 'powerDrift', 'operatorAction', 'bmcAttached')),
                        kind TEXT NOT NULL,
                        key TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        object TEXT CHECK (object IS NULL OR json_valid(object))
                    );
                    INSERT INTO event_v4 SELECT * FROM event;
                    DROP TABLE event;
                    ALTER TABLE event_v4 RENAME TO event;
                    CREATE INDEX event_object ON event(kind, key, cursor);
                    """)
        }
        // The installers' "installed" callback and the agent's task results join the history.
        // A copy of v4's event-table rebuild with two more actions (shipped migrations stay frozen).
        migrator.registerMigration("v5-install-callbacks") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event_v5 (
                        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
                        time TEXT NOT NULL,
                        action TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'discovered', 'factsChanged', 'identityConflict',
                            'fileServed', 'renderFailed', 'powerAction', 'powerDrift', 'operatorAction', 'bmcAttached',
                            'installed', 'taskFinished')),
                        kind TEXT NOT NULL,
                        key TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        object TEXT CHECK (object IS NULL OR json_valid(object))
                    );
                    INSERT INTO event_v5 SELECT * FROM event;
                    DROP TABLE event;
                    ALTER TABLE event_v5 RENAME TO event;
                    CREATE INDEX event_object ON event(kind, key, cursor);
                    """)
        }
        // The workflow engine: its notes join the history, and the agent streams each job's log in chunks
        // (one row per chunk, keyed by where it starts, so a resent chunk is found, not doubled).
        migrator.registerMigration("v6-workflows") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event_v6 (
                        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
                        time TEXT NOT NULL,
                        action TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'discovered', 'factsChanged', 'identityConflict',
                            'fileServed', 'renderFailed', 'powerAction', 'powerDrift', 'operatorAction', 'bmcAttached',
                            'installed', 'taskFinished', 'workflowStep')),
                        kind TEXT NOT NULL,
                        key TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        object TEXT CHECK (object IS NULL OR json_valid(object))
                    );
                    INSERT INTO event_v6 SELECT * FROM event;
                    DROP TABLE event;
                    ALTER TABLE event_v6 RENAME TO event;
                    CREATE INDEX event_object ON event(kind, key, cursor);

                    CREATE TABLE job_log (
                        job TEXT NOT NULL REFERENCES job(key) ON DELETE CASCADE,
                        offset INTEGER NOT NULL CHECK (offset >= 0),
                        chunk BLOB NOT NULL CHECK (length(chunk) > 0),
                        PRIMARY KEY (job, offset)
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    /// Every kind has the same shape: the key, the JSON body, and bookkeeping.
    private static func objectTable(_ kind: ObjectKind) -> String {
        let identity = (kind == .machine || kind == .job) ? "$.id" : kind == .reservation ? "$.mac" : kind == .lease ? "$.address" : "$.name"
        return """
            CREATE TABLE \(kind.rawValue) (
                key TEXT PRIMARY KEY NOT NULL,
                body TEXT NOT NULL CHECK (json_valid(body)),
                revision INTEGER NOT NULL CHECK (revision >= 1),
                origin TEXT NOT NULL CHECK (origin IN ('user', 'content')),
                source TEXT,
                createdAt TEXT NOT NULL,
                updatedAt TEXT NOT NULL,
                CHECK (key = json_extract(body, '\(identity)'))
            );
            """
    }

    private static let machineConstraints = """
        CREATE UNIQUE INDEX machine_name ON machine(json_extract(body, '$.name'));
        -- Filter indexes end in `key`, so a filtered page walks the index in key order and stops
        -- after one page instead of sorting every match.
        CREATE INDEX machine_state ON machine(json_extract(body, '$.state'), key);
        CREATE INDEX machine_architecture ON machine(json_extract(body, '$.architecture'), key);
        CREATE INDEX machine_bootenv ON machine(json_extract(body, '$.bootEnv'), key);
        CREATE INDEX machine_workflow ON machine(json_extract(body, '$.workflow'), key);
        CREATE INDEX machine_serial ON machine(json_extract(body, '$.facts.systemSerial'), key);
        CREATE INDEX machine_system_uuid ON machine(json_extract(body, '$.facts.systemUUID'), key);

        CREATE TRIGGER machine_state_check BEFORE INSERT ON machine
        WHEN json_extract(NEW.body, '$.state') NOT IN (\(quotedList(MachineState.allCases.map(\.rawValue))))
          OR json_extract(NEW.body, '$.architecture') NOT IN (\(quotedList(Architecture.allCases.map(\.rawValue))))
        BEGIN SELECT RAISE(ABORT, 'machine state or architecture out of range'); END;
        CREATE TRIGGER machine_state_check_update BEFORE UPDATE ON machine
        WHEN json_extract(NEW.body, '$.state') NOT IN (\(quotedList(MachineState.allCases.map(\.rawValue))))
          OR json_extract(NEW.body, '$.architecture') NOT IN (\(quotedList(Architecture.allCases.map(\.rawValue))))
        BEGIN SELECT RAISE(ABORT, 'machine state or architecture out of range'); END;

        -- One row per MAC: the primary key is what makes a MAC belong to at most one machine.
        CREATE TABLE machine_mac (
            mac TEXT PRIMARY KEY NOT NULL CHECK (length(mac) = 17 AND mac = lower(mac)),
            machineKey TEXT NOT NULL REFERENCES machine(key) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX machine_mac_machine ON machine_mac(machineKey);
        CREATE TRIGGER machine_mac_insert AFTER INSERT ON machine BEGIN
            INSERT INTO machine_mac(mac, machineKey)
            SELECT json_extract(value, '$.mac'), NEW.key FROM json_each(NEW.body, '$.interfaces');
        END;
        CREATE TRIGGER machine_mac_update AFTER UPDATE OF body ON machine BEGIN
            DELETE FROM machine_mac WHERE machineKey = OLD.key;
            INSERT INTO machine_mac(mac, machineKey)
            SELECT json_extract(value, '$.mac'), NEW.key FROM json_each(NEW.body, '$.interfaces');
        END;
        """

    private static let otherConstraints = """
        CREATE UNIQUE INDEX reservation_address ON reservation(json_extract(body, '$.address'));
        CREATE INDEX reservation_subnet ON reservation(json_extract(body, '$.subnet'), key);
        CREATE INDEX lease_mac ON lease(json_extract(body, '$.mac'), key);
        CREATE INDEX lease_subnet ON lease(json_extract(body, '$.subnet'), key);
        CREATE INDEX job_machine ON job(json_extract(body, '$.machine'), key);
        CREATE INDEX job_state ON job(json_extract(body, '$.state'), key);
        """

    static func quotedList(_ values: [String]) -> String { values.map { "'\($0)'" }.joined(separator: ", ") }

    /// Columns with a uniqueness rule beyond the key, checked before writing for a clear message
    /// (the unique indexes above remain the guarantee).
    static func uniqueFields(of kind: ObjectKind) -> [(field: String, path: String)] {
        switch kind {
        case .machine: [("name", "$.name")]
        case .reservation: [("address", "$.address")]
        default: []
        }
    }
}
