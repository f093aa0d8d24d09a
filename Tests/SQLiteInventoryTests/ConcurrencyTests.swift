import ApplianceTesting
import Foundation
import ProvisioningModel
import SQLiteInventory
import Testing

@Suite("Concurrent writers")
struct ConcurrencyTests {
    @Test("50 concurrent creates all succeed with 50 distinct event cursors")
    func concurrentCreates() async throws {
        try await withStore { store, _ in
            let start = try await store.latestEventCursor()
            let keys = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 1...50 {
                    group.addTask { try await store.create(Fixtures.machine(index), actor: "writer\(index)").object.key }
                }
                var keys: [String] = []
                for try await key in group { keys.append(key) }
                return keys
            }
            #expect(Set(keys).count == 50)
            #expect(try await store.count(.machine) == 50)
            let events = try await store.events(after: start, limit: 1000)
            #expect(events.count == 50)
            #expect(Set(events.map(\.cursor)).count == 50)
            #expect(Set(events.map(\.key)) == Set(keys))
            #expect(events.allSatisfy { $0.action == .created && $0.kind == .machine })
        }
    }

    @Test("of 20 concurrent replaces based on the same revision exactly one wins")
    func concurrentReplaces() async throws {
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(), actor: "test").object
            let outcomes = await withTaskGroup(of: Result<Int, any Error>.self) { group in
                for index in 1...20 {
                    var changed = machine
                    changed.description = "writer \(index)"
                    group.addTask {
                        do { return .success(try await store.replace(changed, expectedRevision: 1, actor: "w\(index)").meta.revision) }
                        catch { return .failure(error) }
                    }
                }
                var outcomes: [Result<Int, any Error>] = []
                for await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            let wins = outcomes.compactMap { try? $0.get() }
            let mismatches = outcomes.filter {
                if case .failure(let error) = $0 { (error as? InventoryError)?.isRevisionMismatch == true } else { false }
            }
            #expect(wins == [2])
            #expect(mismatches.count == 19)
            let stored = try await store.fetch(Machine.self, key: machine.key)
            #expect(stored.meta.revision == 2)
            #expect(stored.object.description.hasPrefix("writer "))
        }
    }
}
