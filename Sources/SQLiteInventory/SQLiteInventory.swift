import Foundation
import GRDB
import NetworkPrimitives
import ProvisioningModel
import Synchronization

/// The embedded inventory: one SQLite file in WAL mode with `synchronous=FULL`, so a write the API
/// acknowledged survives a crash or power loss.
public final class SQLiteInventory: InventoryStore {
    private let pool: DatabasePool
    public let eventSignal = EventSignal()
    private let objectWrites = Atomic<Int64>(0)
    public var objectChangeCount: Int64 { objectWrites.load(ordering: .acquiring) }
    /// Notes from concurrent callers share a transaction (see ``NoteGroupCommit``).
    private let noteCommits = NoteGroupCommit()

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Schema.migrator.migrate(pool)
        } catch {
            throw InventoryError.storage("cannot open inventory database \(path): \(error)")
        }
    }

    /// Closes the database files now rather than when the last reference goes (tests open hundreds
    /// of stores in one process). Any later call fails with a storage error.
    public func close() {
        try? pool.close()
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() async throws -> String {
        try await pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "no answer" }
    }

    // MARK: Objects

    public func create<O: InventoryObject>(_ object: O, actor: String, notes: [InventoryNote]) async throws -> Stored<O> {
        try await write { db in
            let writer = ObjectWriter(db: db)
            if let existing = try writer.row(O.kind, key: object.key) {
                if existing.origin == .content {
                    throw InventoryError.readOnlyContent(
                        what: O.kind.rawValue, key: object.key, source: existing.source ?? "content")
                }
                throw InventoryError.alreadyExists(
                    field: O.kind.keyField, message: "\(O.kind.rawValue) '\(object.key)' already exists")
            }
            let stored = try writer.insert(object, origin: .user, source: nil, actor: actor)
            try writer.appendNotes(notes, actor: actor)
            return stored
        }
    }

    public func fetch<O: InventoryObject>(_ type: O.Type, key: String) async throws -> Stored<O> {
        try await read { db in
            guard let row = try ObjectWriter(db: db).row(O.kind, key: key) else {
                throw InventoryError.notFound(what: O.kind.rawValue, key: key)
            }
            return try row.decode(O.self)
        }
    }

    public func replace<O: InventoryObject>(
        _ object: O, expectedRevision: Int?, actor: String, notes: [InventoryNote]
    ) async throws -> Stored<O> {
        try await write { db in
            let writer = ObjectWriter(db: db)
            let old = try writer.requireWritable(O.self, key: object.key, expectedRevision: expectedRevision)
            let stored = try writer.update(old: old, new: object, actor: actor)
            try writer.appendNotes(notes, actor: actor)
            return stored
        }
    }

    public func update<O: InventoryObject>(
        _ type: O.Type, key: String, actor: String,
        _ change: @escaping @Sendable (O) throws -> (steps: [O], notes: [InventoryNote])
    ) async throws -> Stored<O> {
        try await write { db in
            let writer = ObjectWriter(db: db)
            var current = try writer.requireWritable(O.self, key: key, expectedRevision: nil)
            let (steps, notes) = try change(current.object)
            for step in steps {
                guard step.key == key else {
                    throw InventoryError.invalid([
                        ValidationProblem(field: O.kind.keyField, message: "an update of '\(key)' cannot become '\(step.key)'")
                    ])
                }
                current = try writer.update(old: current, new: step, actor: actor)
            }
            try writer.appendNotes(notes, actor: actor)
            return current
        }
    }

    public func record(_ notes: [InventoryNote], actor: String) async throws {
        guard !notes.isEmpty else { return }
        try await noteCommits.record(notes, actor: actor) { batch in
            try await self.write(changesObjects: false) { db in
                let writer = ObjectWriter(db: db)
                for entry in batch { try writer.appendNotes(entry.notes, actor: entry.actor) }
            }
        }
    }

    public func delete<O: InventoryObject>(_ type: O.Type, key: String, expectedRevision: Int?, actor: String) async throws {
        try await write { db in
            let writer = ObjectWriter(db: db)
            _ = try writer.requireWritable(O.self, key: key, expectedRevision: expectedRevision)
            try writer.remove(O.kind, key: key, actor: actor)
        }
    }

    public func upsert<O: InventoryObject>(_ objects: [O], actor: String) async throws {
        guard !objects.isEmpty else { return }
        try await write { db in
            let writer = ObjectWriter(db: db)
            for object in objects {
                if let old = try writer.row(O.kind, key: object.key) {
                    _ = try writer.update(old: try old.decode(O.self), new: object, actor: actor)
                } else {
                    _ = try writer.insert(object, origin: .user, source: nil, actor: actor)
                }
            }
        }
    }

    public func list<O: InventoryObject>(
        _ type: O.Type, filters: [ListFilter], after cursor: String?, limit: Int
    ) async throws -> Page<O> {
        var conditions: [String] = []
        var arguments: [DatabaseValue] = []
        var problems = ValidationReport()
        for filter in filters {
            let field = O.filterFields[filter.field]
            let isNumeric =
                switch field {
                case .number?, .count?: true
                default: false
                }
            if field != nil, !isNumeric, filter.comparison != .equal, filter.comparison != .notEqual {
                problems.add(filter.field, "'\(filter.field)' can only be compared with = or !=")
                continue
            }
            let negation = filter.comparison == .notEqual ? "NOT " : ""
            switch field {
            case .equals(let path)?:
                conditions.append("\(negation)(json_extract(body, '\(path)') IS ?)")
                arguments.append(filter.value.databaseValue)
            case .contains(let path)?:
                conditions.append("\(negation)EXISTS (SELECT 1 FROM json_each(body, '\(path)') WHERE value = ?)")
                arguments.append(filter.value.databaseValue)
            case .machineMAC?:
                guard let mac = MACAddress(filter.value) else {
                    problems.add(filter.field, "'\(filter.value)' is not a MAC address")
                    continue
                }
                conditions.append("key \(negation)IN (SELECT machineKey FROM machine_mac WHERE mac = ?)")
                arguments.append(mac.description.databaseValue)
            case .number(let path, let bytes)?:
                guard let number = bytes ? ByteCount.parse(filter.value) : Int64(filter.value) else {
                    problems.add(
                        filter.field, "'\(filter.value)' is not \(bytes ? "a size (e.g. 64GiB, 512MiB, 2TB)" : "a whole number")")
                    continue
                }
                conditions.append("json_extract(body, '\(path)') \(filter.comparison.sql) ?")
                arguments.append(number.databaseValue)
            case .count(let path)?:
                guard let number = Int64(filter.value) else {
                    problems.add(filter.field, "'\(filter.value)' is not a whole number")
                    continue
                }
                conditions.append("coalesce(json_array_length(body, '\(path)'), 0) \(filter.comparison.sql) ?")
                arguments.append(number.databaseValue)
            case nil:
                let known = O.filterFields.keys.sorted().joined(separator: ", ")
                problems.add(
                    filter.field,
                    "\(O.kind.collection) cannot be filtered by '\(filter.field)'"
                        + (known.isEmpty ? "" : " (filters: \(known))"))
            }
        }
        guard problems.problems.isEmpty else { throw InventoryError.invalid(problems.problems) }
        if let cursor {
            conditions.append("key > ?")
            arguments.append(cursor.databaseValue)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM \(O.kind.rawValue) \(whereClause) ORDER BY key LIMIT \(limit + 1)"
        let statementArguments = StatementArguments(arguments)
        return try await read { db in
            let rows = try Row.fetchAll(db, sql: sql, arguments: statementArguments).map(ObjectRow.init)
            let items = try rows.prefix(limit).map { try $0.decode(O.self) }
            return Page(items: items, nextCursor: rows.count > limit ? items.last?.object.key : nil)
        }
    }

    public func machine(named name: String) async throws -> Stored<Machine>? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM machine WHERE json_extract(body, '$.name') = ?", arguments: [name])
                .map { try ObjectRow($0).decode(Machine.self) }
        }
    }

    public func count(_ kind: ObjectKind) async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(kind.rawValue)") ?? 0 }
    }

    // MARK: Content

    public func loadContent(_ objects: [ContentObject]) async throws -> ContentReport {
        try await write { db in
            let writer = ObjectWriter(db: db)
            var report = ContentReport()
            // Dependencies first, so references from later kinds resolve.
            let order: [ObjectKind] = [.param, .profile, .bootenv, .task, .stage, .workflow, .subnet]
            let sorted = objects.sorted {
                (order.firstIndex(of: type(of: $0.object).kind) ?? order.count)
                    < (order.firstIndex(of: type(of: $1.object).kind) ?? order.count)
            }
            var shipped: Set<String> = []
            for content in sorted {
                shipped.insert("\(type(of: content.object).kind.rawValue)/\(content.object.key)")
                do {
                    try db.inSavepoint {
                        switch try writer.syncContent(content.object, source: content.source) {
                        case .created: report.created.append(content.label)
                        case .updated: report.updated.append(content.label)
                        case .unchanged: report.unchanged += 1
                        }
                        return .commit
                    }
                } catch let error as InventoryError {
                    report.skipped.append((content.label, error.message))
                }
            }
            // Content that is no longer shipped goes away, unless something still uses it.
            for kind in order.reversed() {
                let keys = try String.fetchAll(db, sql: "SELECT key FROM \(kind.rawValue) WHERE origin = 'content' ORDER BY key")
                for key in keys where !shipped.contains("\(kind.rawValue)/\(key)") {
                    do {
                        try db.inSavepoint {
                            try writer.remove(kind, key: key, actor: "content")
                            return .commit
                        }
                        report.removed.append("\(kind.rawValue) '\(key)'")
                    } catch let error as InventoryError {
                        report.skipped.append(("\(kind.rawValue) '\(key)' (no longer shipped)", error.message))
                    }
                }
            }
            return report
        }
    }

    // MARK: Events

    public func events(after cursor: Int64, limit: Int, kinds: Set<ObjectKind>?) async throws -> [InventoryEvent] {
        let kindFilter = kinds.map { " AND kind IN (\(Schema.quotedList($0.map(\.rawValue).sorted())))" } ?? ""
        return try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM event WHERE cursor > ?\(kindFilter) ORDER BY cursor LIMIT ?", arguments: [cursor, limit]
            ).map(Self.event)
        }
    }

    public func events(
        of kind: ObjectKind, key: String, actions: Set<InventoryEvent.Action>?, after cursor: Int64, limit: Int
    ) async throws -> [InventoryEvent] {
        let actionFilter = actions.map { " AND action IN (\(Schema.quotedList($0.map(\.rawValue).sorted())))" } ?? ""
        return try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM event WHERE kind = ? AND key = ? AND cursor > ?\(actionFilter) ORDER BY cursor LIMIT ?",
                arguments: [kind.rawValue, key, cursor, limit]
            ).map(Self.event)
        }
    }

    private static func event(_ row: Row) throws -> InventoryEvent {
        let objectText: String? = row["object"]
        return InventoryEvent(
            cursor: row["cursor"], time: row["time"],
            action: InventoryEvent.Action(rawValue: row["action"]) ?? .updated,
            kind: ObjectKind(rawValue: row["kind"]) ?? .machine, key: row["key"], actor: row["actor"],
            object: try objectText.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) })
    }

    public func latestEventCursor() async throws -> Int64 {
        try await read { db in try Int64.fetchOne(db, sql: "SELECT max(cursor) FROM event") ?? 0 }
    }

    // MARK: Tokens

    public func createToken(_ token: APIToken, secretHash: String) async throws {
        try await write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM api_token WHERE name = ?", arguments: [token.name]) == true {
                throw InventoryError.alreadyExists(field: "name", message: "a token named '\(token.name)' already exists")
            }
            try db.execute(
                sql: "INSERT INTO api_token (id, name, role, secretHash, createdAt, expiresAt) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [token.id.description, token.name, token.role.rawValue, secretHash, token.createdAt, token.expiresAt])
        }
    }

    public func token(secretHash: String) async throws -> APIToken? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_token WHERE secretHash = ?", arguments: [secretHash]).map(Self.token)
        }
    }

    public func tokens() async throws -> [APIToken] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM api_token ORDER BY name").map(Self.token) }
    }

    public func deleteToken(id: ObjectID) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM api_token WHERE id = ?", arguments: [id.description])
            if db.changesCount == 0 { throw InventoryError.notFound(what: "token", key: id.description) }
        }
    }

    private static func token(_ row: Row) -> APIToken {
        APIToken(
            id: ObjectID(row["id"] as String) ?? ObjectID(), name: row["name"], role: Role(rawValue: row["role"]) ?? .viewer,
            createdAt: row["createdAt"], expiresAt: row["expiresAt"])
    }

    // MARK: Plumbing

    /// Runs a write transaction, maps SQLite failures to `InventoryError`, and signals new events after
    /// commit. Unless the caller says it only appends notes, the write counts as an object change.
    func write<T: Sendable>(changesObjects: Bool = true, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let (result, cursor): (T, Int64)
        do {
            (result, cursor) = try await pool.write { db in
                (try body(db), try Int64.fetchOne(db, sql: "SELECT max(cursor) FROM event") ?? 0)
            }
        } catch let error as InventoryError {
            throw error
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
        if changesObjects { objectWrites.add(1, ordering: .releasing) }
        eventSignal.notify(cursor)
        return result
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as InventoryError {
            throw error
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
    }

    /// The constraints are the last line of defence; the writer checks first to give better messages.
    static func translate(_ error: DatabaseError) -> InventoryError {
        let message = error.message ?? "\(error)"
        switch error.extendedResultCode {
        case .SQLITE_CONSTRAINT_UNIQUE, .SQLITE_CONSTRAINT_PRIMARYKEY:
            let field = message.contains("machine_mac") ? "interfaces" : message.contains("address") ? "address" : "name"
            return .alreadyExists(field: field, message: "a unique value is already taken (\(message))")
        case .SQLITE_CONSTRAINT_CHECK, .SQLITE_CONSTRAINT_TRIGGER, .SQLITE_CONSTRAINT_NOTNULL, .SQLITE_CONSTRAINT_FOREIGNKEY:
            return .invalid([ValidationProblem(field: "", message: "refused by the database: \(message)")])
        default:
            return .storage(message)
        }
    }
}
