import ApplianceTesting
import Foundation
import ProvisioningModel
import SQLiteInventory
import Testing

@Suite("Opening and migrating the store")
struct StoreLifecycleTests {
    @Test("migrating an empty file gives a working, empty store")
    func migratesFromEmpty() async throws {
        try await withStore(seeded: false) { store, _ in
            for kind in ObjectKind.allCases { #expect(try await store.count(kind) == 0, "\(kind)") }
            #expect(try await store.latestEventCursor() == 0)
            let created = try await store.create(BootEnv(name: "local"), actor: "test")
            #expect(created.meta.revision == 1)
            #expect(try await store.count(.bootenv) == 1)
        }
    }

    @Test("reopening the same file keeps the data")
    func reopenKeepsData() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("inventory.sqlite")
        let machine = Fixtures.machine(7)
        do {
            let store = try SQLiteInventory(path: path)
            for bootEnv in Fixtures.bootEnvs { _ = try await store.create(bootEnv, actor: "test") }
            _ = try await store.create(machine, actor: "test")
        }
        let reopened = try SQLiteInventory(path: path)
        let fetched = try await reopened.fetch(Machine.self, key: machine.key)
        #expect(fetched.object == machine)
        #expect(try await reopened.count(.bootenv) == 2)
        #expect(try await reopened.machine(named: "node7")?.object.id == machine.id)
    }

    @Test("integrity check says ok")
    func integrityCheck() async throws {
        try await withStore { store, _ in
            _ = try await store.create(Fixtures.machine(), actor: "test")
            #expect(try await store.integrityCheck() == "ok")
        }
    }

    @Test("the database is in WAL mode")
    func walMode() async throws {
        try await withStore { store, directory in
            _ = try await store.create(Fixtures.machine(), actor: "test")
            let path = directory.file("inventory.sqlite")
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
            // SQLite file header bytes 18 and 19 (write and read format versions) are 2 in WAL mode.
            let header = try #require(FileHandle(forReadingAtPath: path)).readData(ofLength: 20)
            #expect(Array(header.suffix(2)) == [2, 2])
        }
    }

    @Test("a path that cannot be opened is a storage error")
    func unopenablePath() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        #expect {
            _ = try SQLiteInventory(path: directory.file("missing-dir/inventory.sqlite"))
        } throws: { error in
            guard let error = error as? InventoryError, case .storage = error else { return false }
            return true
        }
    }
}
