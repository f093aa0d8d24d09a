import Foundation
import GRDB
import NetworkPrimitives
import ProvisioningModel

/// One stored row of any kind, as read from its table. Stays inside this module.
struct ObjectRow {
    var key: String
    var body: String
    var revision: Int
    var origin: ObjectOrigin
    var source: String?
    var createdAt: Date
    var updatedAt: Date

    init(_ row: Row) {
        key = row["key"]
        body = row["body"]
        revision = row["revision"]
        origin = ObjectOrigin(rawValue: row["origin"]) ?? .user
        source = row["source"]
        createdAt = row["createdAt"]
        updatedAt = row["updatedAt"]
    }

    var meta: ObjectMeta {
        ObjectMeta(revision: revision, origin: origin, source: source, createdAt: createdAt, updatedAt: updatedAt)
    }

    func decode<O: InventoryObject>(_ type: O.Type) throws -> Stored<O> {
        do {
            return Stored(object: try ObjectCoding.decoder.decode(O.self, from: Data(body.utf8)), meta: meta)
        } catch {
            throw InventoryError.storage("stored \(O.kind.rawValue) '\(key)' cannot be read: \(error)")
        }
    }
}

enum ObjectCoding {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    static func encode(_ object: some Encodable) throws -> String {
        String(decoding: try encoder.encode(object), as: UTF8.self)
    }
}

enum ContentSyncResult {
    case created, updated, unchanged
}

/// The writes of one transaction: every object write checks its cross-object rules, keeps the
/// reference table current and appends its event, all inside the caller's transaction.
struct ObjectWriter {
    let db: Database

    func row(_ kind: ObjectKind, key: String) throws -> ObjectRow? {
        try Row.fetchOne(db, sql: "SELECT * FROM \(kind.rawValue) WHERE key = ?", arguments: [key]).map(ObjectRow.init)
    }

    /// The stored object a replace or delete applies to, after the read-only and revision checks.
    func requireWritable<O: InventoryObject>(_ type: O.Type, key: String, expectedRevision: Int?) throws -> Stored<O> {
        guard let row = try row(O.kind, key: key) else { throw InventoryError.notFound(what: O.kind.rawValue, key: key) }
        if row.origin == .content {
            throw InventoryError.readOnlyContent(what: O.kind.rawValue, key: key, source: row.source ?? "content")
        }
        if let expectedRevision, expectedRevision != row.revision {
            throw InventoryError.revisionMismatch(key: key, expected: expectedRevision, actual: row.revision)
        }
        return try row.decode(O.self)
    }

    func insert<O: InventoryObject>(_ object: O, origin: ObjectOrigin, source: String?, actor: String) throws -> Stored<O> {
        try check(object, problems: object.validate())
        let now = Date()
        let body = try ObjectCoding.encode(object)
        try db.execute(
            sql: """
                INSERT INTO \(O.kind.rawValue) (key, body, revision, origin, source, createdAt, updatedAt)
                VALUES (?, ?, 1, ?, ?, ?, ?)
                """,
            arguments: [object.key, body, origin.rawValue, source, now, now])
        try recordReferences(of: object)
        try appendEvent(.created, kind: O.kind, key: object.key, actor: actor, body: body)
        return Stored(object: object, meta: ObjectMeta(revision: 1, origin: origin, source: source, createdAt: now, updatedAt: now))
    }

    func update<O: InventoryObject>(old: Stored<O>, new object: O, actor: String, source: String? = nil) throws -> Stored<O> {
        try check(object, problems: object.validate() + object.validateChange(from: old.object))
        let now = Date()
        let body = try ObjectCoding.encode(object)
        let revision = old.meta.revision + 1
        try db.execute(
            sql: "UPDATE \(O.kind.rawValue) SET body = ?, revision = ?, source = coalesce(?, source), updatedAt = ? WHERE key = ?",
            arguments: [body, revision, source, now, object.key])
        try recordReferences(of: object)
        try appendEvent(.updated, kind: O.kind, key: object.key, actor: actor, body: body)
        var meta = old.meta
        meta.revision = revision
        meta.updatedAt = now
        meta.source = source ?? meta.source
        return Stored(object: object, meta: meta)
    }

    func remove(_ kind: ObjectKind, key: String, actor: String) throws {
        let referrers = try Row.fetchAll(
            db, sql: "SELECT fromKind, fromKey, field FROM reference WHERE toKind = ? AND toKey = ? ORDER BY fromKind, fromKey LIMIT 11",
            arguments: [kind.rawValue, key]
        ).map { row -> String in
            let fromKind: String = row["fromKind"]
            let fromKey: String = row["fromKey"]
            let field: String = row["field"]
            return "\(fromKind) '\(fromKey)' (\(field))"
        }
        guard referrers.isEmpty else {
            throw InventoryError.inUse(what: kind.rawValue, key: key, referrers: Array(referrers.prefix(10)) + (referrers.count > 10 ? ["more"] : []))
        }
        try db.execute(sql: "DELETE FROM \(kind.rawValue) WHERE key = ?", arguments: [key])
        try db.execute(sql: "DELETE FROM reference WHERE fromKind = ? AND fromKey = ?", arguments: [kind.rawValue, key])
        try appendEvent(.deleted, kind: kind, key: key, actor: actor, body: nil)
    }

    /// Makes shipped `object` the stored content object with its key.
    func syncContent<O: InventoryObject>(_ object: O, source: String) throws -> ContentSyncResult {
        guard let existing = try row(O.kind, key: object.key) else {
            _ = try insert(object, origin: .content, source: source, actor: "content")
            return .created
        }
        guard existing.origin == .content else {
            throw InventoryError.alreadyExists(
                field: "name",
                message: "a user-created \(O.kind.rawValue) named '\(object.key)' exists; rename or delete it to use the shipped one")
        }
        if try ObjectCoding.encode(object) == existing.body && existing.source == source { return .unchanged }
        _ = try update(old: try existing.decode(O.self), new: object, actor: "content", source: source)
        return .updated
    }

    // MARK: Cross-object rules

    /// Throws `.invalid` with every problem: the object's own, dangling references, bad param values,
    /// and unique values (names, MACs, addresses) that another object holds.
    private func check<O: InventoryObject>(_ object: O, problems: [ValidationProblem]) throws {
        var report = ValidationReport()
        report.merge(problems, under: "")
        for reference in object.references {
            let exists = try Bool.fetchOne(
                db, sql: "SELECT 1 FROM \(reference.kind.rawValue) WHERE key = ?", arguments: [reference.key]) ?? false
            report.check(exists, reference.field, "no \(reference.kind.rawValue) named '\(reference.key)'")
        }
        for (name, value) in object.paramValues.sorted(by: { $0.key < $1.key }) {
            if let definition = try row(.param, key: name) {
                let param = try definition.decode(Param.self).object
                report.merge(param.schema.problems(with: value, field: "params.\(name)"), under: "")
            }
        }
        var conflicts: [ValidationProblem] = []
        for unique in Schema.uniqueFields(of: O.kind) {
            let holder = try String.fetchOne(
                db,
                sql: """
                    SELECT o.key FROM \(O.kind.rawValue) o
                    WHERE json_extract(o.body, '\(unique.path)') = (SELECT json_extract(?, '\(unique.path)')) AND o.key != ?
                    """,
                arguments: [try ObjectCoding.encode(object), object.key])
            if let holder {
                conflicts.append(ValidationProblem(field: unique.field, message: "already used by \(O.kind.rawValue) '\(holder)'"))
            }
        }
        if let machine = object as? Machine {
            for (index, interface) in machine.interfaces.enumerated() {
                if let owner = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT m.key, json_extract(m.body, '$.name') AS name FROM machine_mac mm JOIN machine m ON m.key = mm.machineKey
                        WHERE mm.mac = ? AND mm.machineKey != ?
                        """,
                    arguments: [interface.mac.description, machine.key])
                {
                    let ownerName: String = owner["name"]
                    let ownerKey: String = owner["key"]
                    conflicts.append(ValidationProblem(
                        field: "interfaces[\(index)].mac",
                        message: "\(interface.mac) already belongs to machine '\(ownerName)' (\(ownerKey))"))
                }
            }
        }
        if !report.problems.isEmpty { throw InventoryError.invalid(report.problems) }
        if let first = conflicts.first {
            throw InventoryError.alreadyExists(field: first.field, message: first.message)
        }
    }

    private func recordReferences(of object: some InventoryObject) throws {
        let kind = type(of: object).kind.rawValue
        try db.execute(sql: "DELETE FROM reference WHERE fromKind = ? AND fromKey = ?", arguments: [kind, object.key])
        for reference in object.references {
            try db.execute(
                sql: "INSERT INTO reference (fromKind, fromKey, field, toKind, toKey) VALUES (?, ?, ?, ?, ?)",
                arguments: [kind, object.key, reference.field, reference.kind.rawValue, reference.key])
        }
    }

    func appendNotes(_ notes: [InventoryNote], actor: String) throws {
        for note in notes {
            let body = try note.detail.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
            try appendEvent(note.action, kind: note.kind, key: note.key, actor: actor, body: body)
        }
    }

    private func appendEvent(_ action: InventoryEvent.Action, kind: ObjectKind, key: String, actor: String, body: String?) throws {
        try db.execute(
            sql: "INSERT INTO event (time, action, kind, key, actor, object) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [Date(), action.rawValue, kind.rawValue, key, actor, body])
    }
}
