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
}
