import ApplianceTesting
import Foundation
import ProvisioningModel
import SQLiteInventory
import Testing

/// `update(_:key:actor:_:)`: a read-modify-write in one transaction, through legal steps only.
@Suite("Read-modify-write updates")
struct UpdateStepsTests {
    static func note(_ machine: Machine) -> InventoryNote {
        InventoryNote(action: .installed, kind: .machine, key: machine.key, detail: ["n": 1])
    }

    @Test("each step is one updated event, checked against the one before; the notes follow in the same transaction")
    func stepsAndNotes() async throws {
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(1, state: .ready), actor: "test").object
            let changes = store.objectChangeCount
            let stored = try await store.update(Machine.self, key: machine.key, actor: "callback") { current in
                var deploying = current
                deploying.state = .deploying
                var deployed = deploying
                deployed.state = .deployed
                deployed.bootEnv = "local"
                return ([deploying, deployed], [Self.note(current)])
            }
            #expect(stored.object.state == .deployed && stored.object.bootEnv == "local")
            #expect(stored.meta.revision == 3)
            #expect(try await store.fetch(Machine.self, key: machine.key).object == stored.object)
            #expect(store.objectChangeCount > changes)
            let history = try await store.events(of: .machine, key: machine.key, actions: nil, after: 0, limit: 10)
            #expect(history.map(\.action) == [.created, .updated, .updated, .installed])
            #expect(history.map(\.actor) == ["test", "callback", "callback", "callback"])
            #expect(
                history[1].object?.objectValue?["state"] == "deploying" && history[2].object?.objectValue?["state"] == "deployed")
        }
    }

    @Test("an illegal step anywhere writes nothing, not even the steps before it or the notes")
    func illegalStep() async throws {
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(1, state: .ready), actor: "test").object
            let error = await inventoryError {
                _ = try await store.update(Machine.self, key: machine.key, actor: "callback") { current in
                    var deploying = current
                    deploying.state = .deploying
                    var ready = deploying
                    ready.state = .ready  // deploying -> ready is not a legal move
                    return ([deploying, ready], [Self.note(current)])
                }
            }
            #expect(error?.invalidFields == ["state"])
            #expect(try await store.fetch(Machine.self, key: machine.key).meta.revision == 1)
            #expect(try await store.events(of: .machine, key: machine.key, actions: nil, after: 0, limit: 10).count == 1)
        }
    }

    @Test("no steps record only the notes; a change that throws writes nothing; a step may not change the key")
    func noStepsThrowsAndKeys() async throws {
        struct Refused: Error {}
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(1, state: .deploying), actor: "test").object
            let same = try await store.update(Machine.self, key: machine.key, actor: "agent") { current in
                ([], [Self.note(current)])
            }
            #expect(same.object == machine && same.meta.revision == 1)
            await #expect(throws: Refused.self) {
                _ = try await store.update(Machine.self, key: machine.key, actor: "agent") { _ in throw Refused() }
            }
            let renamed = await inventoryError {
                _ = try await store.update(Machine.self, key: machine.key, actor: "agent") { current in
                    var other = current
                    other.id = ObjectID()
                    return ([other], [])
                }
            }
            #expect(renamed?.invalidFields == ["id"])
            let missing = await inventoryError {
                _ = try await store.update(Machine.self, key: ObjectID().description, actor: "agent") { _ in ([], []) }
            }
            #expect(missing?.isNotFound == true)
            let history = try await store.events(of: .machine, key: machine.key, actions: nil, after: 0, limit: 10)
            #expect(history.map(\.action) == [.created, .installed])
            #expect(try await store.fetch(Machine.self, key: machine.key).meta.revision == 1)
        }
    }

    @Test("concurrent updates each see the other's result: a retried callback cannot apply twice")
    func concurrentUpdates() async throws {
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(1, state: .deploying), actor: "test").object
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        _ = try await store.update(Machine.self, key: machine.key, actor: "callback") { current in
                            guard current.state == .deploying else { return ([], []) }
                            var deployed = current
                            deployed.state = .deployed
                            return ([deployed], [Self.note(current)])
                        }
                    }
                }
                try await group.waitForAll()
            }
            let history = try await store.events(of: .machine, key: machine.key, actions: nil, after: 0, limit: 20)
            #expect(history.map(\.action) == [.created, .updated, .installed])
        }
    }
}
