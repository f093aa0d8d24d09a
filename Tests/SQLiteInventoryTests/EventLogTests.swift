import ApplianceTesting
import Foundation
import ProvisioningModel
import SQLiteInventory
import Testing

@Suite("Event log")
struct EventLogTests {
    @Test("create, update and delete each append one event with a strictly increasing cursor")
    func onePerWrite() async throws {
        try await withStore(seeded: false) { store, _ in
            let bootEnv = BootEnv(name: "local")
            _ = try await store.create(bootEnv, actor: "alice")
            _ = try await store.replace(BootEnv(name: "local", description: "disk"), expectedRevision: 1, actor: "bob")
            try await store.delete(BootEnv.self, key: "local", expectedRevision: 2, actor: "carol")

            let events = try await store.events(after: 0, limit: 100)
            #expect(events.map(\.action) == [.created, .updated, .deleted])
            #expect(events.map(\.actor) == ["alice", "bob", "carol"])
            #expect(events.allSatisfy { $0.kind == .bootenv && $0.key == "local" })
            #expect(zip(events, events.dropFirst()).allSatisfy { $0.cursor < $1.cursor })
            #expect(try await store.latestEventCursor() == events.last?.cursor)
        }
    }

    @Test("created and updated events carry the object after the change; deleted events carry none")
    func eventBodies() async throws {
        try await withStore(seeded: false) { store, _ in
            _ = try await store.create(BootEnv(name: "local"), actor: "test")
            _ = try await store.replace(BootEnv(name: "local", description: "disk"), expectedRevision: 1, actor: "test")
            try await store.delete(BootEnv.self, key: "local", expectedRevision: nil, actor: "test")
            let events = try await store.events(after: 0, limit: 100)
            try #require(events.count == 3)
            #expect(events[0].object?.objectValue?["name"] == "local")
            #expect(events[1].object?.objectValue?["description"] == "disk")
            #expect(events[2].object == nil)
        }
    }

    @Test("events(after:limit:) pages through the log without gaps or repeats")
    func paging() async throws {
        try await withStore(seeded: false) { store, _ in
            for index in 1...7 { _ = try await store.create(BootEnv(name: "env\(index)"), actor: "test") }
            let all = try await store.events(after: 0, limit: 100)
            #expect(all.count == 7)
            var paged: [InventoryEvent] = []
            var cursor: Int64 = 0
            var pageSizes: [Int] = []
            while pageSizes.count <= 10 {
                let page = try await store.events(after: cursor, limit: 3)
                pageSizes.append(page.count)
                guard let last = page.last else { break }
                paged += page
                cursor = last.cursor
            }
            #expect(paged == all)
            #expect(pageSizes == [3, 3, 1, 0])
        }
    }

    @Test("events after the latest cursor is empty")
    func nothingAfterLatest() async throws {
        try await withStore { store, _ in
            let latest = try await store.latestEventCursor()
            #expect(try await store.events(after: latest, limit: 10).isEmpty)
        }
    }

    @Test("cursors keep growing after the database is reopened")
    func monotonicAcrossReopen() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("inventory.sqlite")
        let before: Int64
        do {
            let store = try SQLiteInventory(path: path)
            _ = try await store.create(BootEnv(name: "a"), actor: "test")
            _ = try await store.create(BootEnv(name: "b"), actor: "test")
            try await store.delete(BootEnv.self, key: "b", expectedRevision: nil, actor: "test")
            before = try await store.latestEventCursor()
        }
        let reopened = try SQLiteInventory(path: path)
        #expect(try await reopened.latestEventCursor() == before)
        _ = try await reopened.create(BootEnv(name: "c"), actor: "test")
        let after = try await reopened.events(after: before, limit: 10)
        #expect(after.map(\.key) == ["c"])
        #expect(after.allSatisfy { $0.cursor > before })
    }

    @Test("a committed write wakes a waiter on the event signal")
    func signalAfterWrite() async throws {
        try await withStore { store, _ in
            let cursor = try await store.latestEventCursor()
            async let woke: Void = store.eventSignal.wait(beyond: cursor, timeout: .seconds(3600))
            _ = try await store.create(Fixtures.machine(), actor: "test")
            await woke
            #expect(try await store.latestEventCursor() > cursor)
        }
    }

    @Test("every event action passes the schema's CHECK and reads back as itself")
    func everyActionIsStorable() async throws {
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(), actor: "test").object
            let notes = InventoryEvent.Action.allCases.map { InventoryNote(action: $0, kind: .machine, key: machine.key, detail: ["n": 1]) }
            try await store.record(notes, actor: "test")
            let history = try await store.events(of: .machine, key: machine.key, actions: nil, after: 0, limit: 100)
            #expect(history.map(\.action) == [.created] + InventoryEvent.Action.allCases)
        }
    }

    @Test("a database from before v3-served-files keeps its events and cursors and accepts the new actions")
    func upgradeFromEventNotes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("inventory.sqlite")
        let machine = Fixtures.machine(3)
        do {
            let store = try SQLiteInventory(path: path)
            for bootEnv in Fixtures.bootEnvs { _ = try await store.create(bootEnv, actor: "test") }
            _ = try await store.create(machine, actor: "test")
            store.close()
        }
        // Put the event table back as v2-event-notes left it, and forget that v3 ran.
        let downgrade = try await AnvilServer.run(
            "/usr/bin/sqlite3",
            [
                path,
                """
                CREATE TABLE event_v2 (cursor INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
                  action TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'discovered', 'factsChanged', 'identityConflict')),
                  kind TEXT NOT NULL, key TEXT NOT NULL, actor TEXT NOT NULL, object TEXT CHECK (object IS NULL OR json_valid(object)));
                INSERT INTO event_v2 SELECT * FROM event; DROP TABLE event; ALTER TABLE event_v2 RENAME TO event;
                CREATE INDEX event_object ON event(kind, key, cursor);
                DELETE FROM grdb_migrations WHERE identifier = 'v3-served-files';
                INSERT INTO event (time, action, kind, key, actor) VALUES ('2026-01-01T00:00:00Z', 'fileServed', 'machine', 'x', 'test');
                """,
            ])
        #expect(downgrade.status != 0 && downgrade.stderr.contains("CHECK constraint failed"), "the v2 table must refuse the new action: \(downgrade)")
        let before = try await AnvilServer.run("/usr/bin/sqlite3", [path, "SELECT max(cursor) FROM event;"])
        let latest = try #require(Int64(before.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(before)")

        let upgraded = try SQLiteInventory(path: path)
        defer { upgraded.close() }
        #expect(try await upgraded.latestEventCursor() == latest)
        try await upgraded.record(
            [InventoryNote(action: .fileServed, kind: .machine, key: machine.key, detail: ["path": "boot/x.ipxe"])], actor: "test")
        let history = try await upgraded.events(of: .machine, key: machine.key, actions: nil, after: 0, limit: 10)
        #expect(history.map(\.action) == [.created, .fileServed])
        #expect(history.last!.cursor > latest)
    }
}
