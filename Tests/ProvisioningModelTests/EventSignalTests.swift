import ProvisioningModel
import Testing

/// These tests only check that `wait` returns; none asserts how fast. The long timeouts make a wait that
/// is *not* woken by `notify` visible as a test that does not finish.
@Suite("EventSignal")
struct EventSignalTests {
    @Test("wait returns after notify with a larger cursor")
    func wakesOnNotify() async {
        let signal = EventSignal()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await signal.wait(beyond: 5, timeout: .seconds(3600)) }
            group.addTask {
                // Notify repeatedly until the waiter is done, so the test does not depend on who runs first.
                var cursor: Int64 = 6
                while !Task.isCancelled {
                    signal.notify(cursor)
                    cursor += 1
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    @Test("a single notify wakes a waiter that is already waiting")
    func singleNotifyWakesWaiter() async {
        let signal = EventSignal()
        let waiter = Task { await signal.wait(beyond: 0, timeout: .seconds(3600)) }
        // Give the waiter a chance to register; if it has not yet, notify raises `latest` and it returns at once.
        await Task.yield()
        signal.notify(1)
        await waiter.value
    }

    @Test("wait returns immediately when the cursor has already been passed")
    func alreadyPassed() async {
        let signal = EventSignal()
        signal.notify(10)
        await signal.wait(beyond: 5, timeout: .seconds(3600))
    }

    @Test("wait returns after the timeout when nothing is notified")
    func timesOut() async {
        let signal = EventSignal()
        await signal.wait(beyond: 0, timeout: .milliseconds(50))
    }

    @Test("wait returns after the timeout when the log has not passed the cursor")
    func timesOutAtEqualCursor() async {
        let signal = EventSignal()
        signal.notify(5)
        await signal.wait(beyond: 5, timeout: .milliseconds(50))
    }

    @Test("wakeAll releases every waiter")
    func wakeAll() async {
        let signal = EventSignal()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<5 { group.addTask { await signal.wait(beyond: 100, timeout: .seconds(3600)) } }
            group.addTask {
                while !Task.isCancelled {
                    signal.wakeAll()
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            for _ in 0..<5 { await group.next() }
            group.cancelAll()
        }
    }
}
