import Synchronization

/// Fan-out of "the event log has grown to cursor N". Listeners re-read the log from their own cursor,
/// so a missed or coalesced signal never loses an event.
public final class EventSignal: Sendable {
    private let listeners = Mutex<[Int: AsyncStream<Int64>.Continuation]>([:])
    private let nextID = Atomic<Int>(0)

    public init() {}

    public func notify(_ cursor: Int64) {
        listeners.withLock { listeners in
            for continuation in listeners.values { continuation.yield(cursor) }
        }
    }

    /// A stream of cursors; it ends when the consumer stops iterating (the listener is removed then).
    public func subscribe() -> AsyncStream<Int64> {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<Int64>.makeStream(bufferingPolicy: .bufferingNewest(1))
        continuation.onTermination = { [weak self] _ in
            _ = self?.listeners.withLock { $0.removeValue(forKey: id) }
        }
        listeners.withLock { $0[id] = continuation }
        return stream
    }
}
