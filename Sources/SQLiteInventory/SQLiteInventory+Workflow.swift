import Foundation
import GRDB
import ProvisioningModel

/// The workflow engine's writes: a machine's step together with its jobs, and job logs.
extension SQLiteInventory {
    public func writeWorkflowStep(
        machine steps: [Machine], basedOn revision: Int, key: String, jobs: [Job], notes: [InventoryNote], actor: String
    ) async throws {
        try await write { db in
            let writer = ObjectWriter(db: db)
            var current = try writer.requireWritable(Machine.self, key: key, expectedRevision: revision)
            for step in steps {
                guard step.key == key else {
                    throw InventoryError.invalid([
                        ValidationProblem(field: "id", message: "a step of '\(key)' cannot become '\(step.key)'")
                    ])
                }
                current = try writer.update(old: current, new: step, actor: actor)
            }
            for job in jobs {
                if let old = try writer.row(.job, key: job.key) {
                    _ = try writer.update(old: try old.decode(Job.self), new: job, actor: actor)
                } else {
                    _ = try writer.insert(job, origin: .user, source: nil, actor: actor)
                }
            }
            try writer.appendNotes(notes, actor: actor)
        }
    }

    public func appendJobLog(job: ObjectID, offset: Int64, _ chunk: Data) async throws -> Int64 {
        // Log chunks change no object: caches of objects stay valid.
        try await write(changesObjects: false) { db in
            guard try ObjectWriter(db: db).row(.job, key: job.description) != nil else {
                throw InventoryError.notFound(what: "job", key: job.description)
            }
            let length = try Self.jobLogLength(job, db)
            guard offset <= length else { throw JobLogGap(length: length, offset: offset) }
            let fresh = chunk.dropFirst(Int(min(length - offset, Int64(chunk.count))))
            guard !fresh.isEmpty else { return length }
            try db.execute(
                sql: "INSERT INTO job_log (job, offset, chunk) VALUES (?, ?, ?)",
                arguments: [job.description, length, Data(fresh)])
            return length + Int64(fresh.count)
        }
    }

    public func jobLog(job: ObjectID, from offset: Int64, limit: Int) async throws -> (bytes: Data, length: Int64) {
        try await read { db in
            guard try ObjectWriter(db: db).row(.job, key: job.description) != nil else {
                throw InventoryError.notFound(what: "job", key: job.description)
            }
            let length = try Self.jobLogLength(job, db)
            var bytes = Data()
            // The chunk holding `offset` and those after it, until `limit` bytes are read.
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT offset, chunk FROM job_log WHERE job = ? AND offset + length(chunk) > ?
                    ORDER BY offset
                    """,
                arguments: [job.description, offset])
            while bytes.count < limit, let row = try rows.next() {
                let start: Int64 = row["offset"]
                let chunk: Data = row["chunk"]
                let skip = Int(max(0, offset - start))
                bytes.append(chunk.dropFirst(skip).prefix(limit - bytes.count))
            }
            return (bytes, length)
        }
    }

    private static func jobLogLength(_ job: ObjectID, _ db: Database) throws -> Int64 {
        try Int64.fetchOne(
            db, sql: "SELECT coalesce(max(offset + length(chunk)), 0) FROM job_log WHERE job = ?", arguments: [job.description]
        ) ?? 0
    }
}
