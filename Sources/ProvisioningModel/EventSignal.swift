import Synchronization

/// "The event log has grown to cursor N." Waiters re-read the log from their own cursor afterwards,
/// so a coalesced or missed wake-up never loses an event; it can only delay one by the timeout.
public final class EventSignal: Sendable {
    private struct State {
        var latest: Int64 = 0
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func notify(_ cursor: Int64) {
        let waiters = state.withLock { state in
            state.latest = max(state.latest, cursor)
            defer { state.waiters = [:] }
            return state.waiters
        }
        for waiter in waiters.values { waiter.resume() }
    }

    /// Wakes every waiter now (graceful shutdown), without a new cursor.
    public func wakeAll() {
        let waiters = state.withLock { state in
            defer { state.waiters = [:] }
            return state.waiters
        }
        for waiter in waiters.values { waiter.resume() }
    }

    /// Returns once the log has grown past `cursor`, or after `timeout`, whichever comes first.
    public func wait(beyond cursor: Int64, timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id: Int? = state.withLock { state in
                if state.latest > cursor { return nil }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = continuation
                return state.nextWaiter
            }
            guard let id else { return continuation.resume() }
            Task {
                try? await Task.sleep(for: timeout)
                self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
            }
        }
    }
}
