import ApplianceTesting
import Foundation
import ProvisioningModel
import Synchronization
import Testing

@testable import SQLiteInventory

@Suite("Notes share transactions")
struct NoteGroupCommitTests {
    @Test("150 concurrent notes: each caller returns with its note committed, and notes leave the object count alone")
    func concurrentNotesAreEachCommitted() async throws {
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(), actor: "test").object
            let objectChanges = store.objectChangeCount
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<150 {
                    group.addTask {
                        try await store.record(
                            [
                                InventoryNote(
                                    action: .fileServed, kind: .machine, key: machine.key, detail: ["n": .integer(Int64(index))])
                            ],
                            actor: "writer\(index % 3)")
                        // Returned means committed: the note is in the log now.
                        let mine = try await store.events(
                            of: .machine, key: machine.key, actions: [.fileServed], after: 0, limit: 1000
                        )
                        .filter { $0.object == ["n": .integer(Int64(index))] }
                        #expect(mine.count == 1, "note \(index)")
                        #expect(mine.first?.actor == "writer\(index % 3)")
                    }
                }
                try await group.waitForAll()
            }
            let notes = try await store.events(of: .machine, key: machine.key, actions: [.fileServed], after: 0, limit: 1000)
            #expect(notes.count == 150)
            #expect(Set(notes.map(\.cursor)).count == 150)
            #expect(store.objectChangeCount == objectChanges)
            _ = try await store.replace(machine, expectedRevision: nil, actor: "test")
            #expect(store.objectChangeCount > objectChanges)
        }
    }

    @Test("a batch that fails is retried note by note: only the caller whose note cannot be written gets the error")
    func oneBadNoteFailsOnlyItsCaller() async throws {
        let commits = NoteGroupCommit()
        let written = Mutex<[String]>([])
        struct Refused: Error {}
        let write: @Sendable ([NoteGroupCommit.Entry]) async throws -> Void = { batch in
            try await Task.sleep(for: .milliseconds(5))
            if batch.contains(where: { $0.actor == "bad" }) { throw Refused() }
            written.withLock { $0 += batch.map(\.actor) }
        }
        let note = InventoryNote(action: .fileServed, kind: .machine, key: "m", detail: nil)
        let outcomes = await withTaskGroup(of: (String, Bool).self) { group in
            for index in 0..<100 {
                let actor = index == 50 ? "bad" : "good\(index)"
                group.addTask {
                    do {
                        try await commits.record([note], actor: actor, write: write)
                        return (actor, true)
                    } catch {
                        return (actor, false)
                    }
                }
            }
            var outcomes: [String: Bool] = [:]
            for await (actor, succeeded) in group { outcomes[actor] = succeeded }
            return outcomes
        }
        #expect(outcomes.count == 100)
        #expect(outcomes.filter { !$0.value }.map(\.key) == ["bad"])
        #expect(Set(written.withLock { $0 }) == Set((0..<100).filter { $0 != 50 }.map { "good\($0)" }))
        #expect(written.withLock { $0.count } == 99, "a note was written twice")
    }
}
