import Synchronization

/// "The event log has grown to cursor N." Waiters re-read the log from their own cursor afterwards,
/// so a coalesced or missed wake-up never loses an event; it can only delay one by the timeout.
public final class EventSignal: Sendable {
    private struct State {
        var latest: Int64 = 0
        var nextWaiter = 0
        /// Waiters between entering and leaving `wait`.
        var active: Set<Int> = []
        /// Suspended waiters, by id.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Active waiters woken (timeout, cancellation) before they had suspended.
        var woken: Set<Int> = []
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

    /// Returns once the log has grown past `cursor`, after `timeout`, or when the calling task is
    /// cancelled, whichever comes first.
    public func wait(beyond cursor: Int64, timeout: Duration) async {
        let id = state.withLock { state in
            state.nextWaiter += 1
            state.active.insert(state.nextWaiter)
            return state.nextWaiter
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.wake(id)
        }
        defer {
            timer.cancel()
            state.withLock { state in
                state.active.remove(id)
                state.woken.remove(id)
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.latest > cursor || state.woken.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            wake(id)
        }
    }

    /// Wakes one waiter, or marks it woken if it has not suspended yet; a finished waiter is ignored.
    private func wake(_ id: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
            if state.active.contains(id) { state.woken.insert(id) }
            return nil
        }
        waiter?.resume()
    }
}
