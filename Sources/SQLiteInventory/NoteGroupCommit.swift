import ProvisioningModel
import Synchronization

/// Group commit for notes: callers arriving while a note transaction is being written wait for the
/// next one, which carries all of their notes. With `synchronous=FULL` each commit waits for the disk,
/// so one transaction per served boot file would cap a boot storm at the disk's flush rate. Every
/// caller still returns only once its own notes are committed (or with the error that stopped them).
final class NoteGroupCommit: Sendable {
    struct Entry: Sendable {
        var notes: [InventoryNote]
        var actor: String
    }

    private struct Waiting {
        var entry: Entry
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var waiting: [Waiting] = []
        var writing = false
    }

    /// A batch larger than this waits for the next transaction: a transaction's size stays bounded.
    static let batchLimit = 512
    private let state = Mutex(State())

    /// Writes `notes` in a shared transaction made by `write`; returns after it committed.
    func record(
        _ notes: [InventoryNote], actor: String, write: @escaping @Sendable ([Entry]) async throws -> Void
    ) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startWriter = state.withLock { state in
                state.waiting.append(Waiting(entry: Entry(notes: notes, actor: actor), continuation: continuation))
                defer { state.writing = true }
                return !state.writing
            }
            if startWriter { Task { await self.drain(write) } }
        }
    }

    /// Writes batches until no caller is waiting.
    private func drain(_ write: @Sendable ([Entry]) async throws -> Void) async {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                let batch = Array(state.waiting.prefix(Self.batchLimit))
                state.waiting.removeFirst(batch.count)
                if batch.isEmpty { state.writing = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                try await write(batch.map(\.entry))
                for waiting in batch { waiting.continuation.resume() }
            } catch {
                guard batch.count > 1 else {
                    batch[0].continuation.resume(throwing: error)
                    continue
                }
                // One caller's bad note must not fail the others: each is tried on its own.
                for waiting in batch {
                    do {
                        try await write([waiting.entry])
                        waiting.continuation.resume()
                    } catch {
                        waiting.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }
}
