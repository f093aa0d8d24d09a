import ProvisioningModel
import Testing

/// Waits here use an hour-long timeout, so a wait that returns within the liveness bound (60 s) was
/// woken, not timed out. A wake-up that never comes fails the test at the bound instead of hanging.
@Suite("EventSignal")
struct EventSignalTests {
    static let livenessBound = Duration.seconds(60)

    /// Whether `body` finished within the bound. The body runs in an unstructured task that is
    /// cancelled at the bound (a wait returns on cancellation), so a stuck waiter cannot hold the
    /// test open: a task group waits for all its children before it returns.
    static func finishes(within bound: Duration = livenessBound, _ body: @escaping @Sendable () async -> Void) async -> Bool {
        let work = Task { await body() }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await work.value
                return true
            }
            group.addTask {
                try? await Task.sleep(for: bound)
                return false
            }
            let first = await group.next() ?? false
            work.cancel()
            group.cancelAll()
            return first
        }
    }

    @Test("wait returns after notify with a larger cursor")
    func wakesOnNotify() async {
        let signal = EventSignal()
        let notifier = Task {
            // Notify repeatedly so the test does not depend on whether the waiter registered first.
            var cursor: Int64 = 6
            while !Task.isCancelled {
                signal.notify(cursor)
                cursor += 1
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        defer { notifier.cancel() }
        #expect(await Self.finishes { await signal.wait(beyond: 5, timeout: .seconds(3600)) })
    }

    @Test("a notify with a cursor not beyond the waiter's does not wake it")
    func smallerCursorDoesNotWake() async {
        let signal = EventSignal()
        signal.notify(3)
        #expect(!(await Self.finishes(within: .milliseconds(300)) { await signal.wait(beyond: 5, timeout: .seconds(3600)) }))
    }

    @Test("wait returns immediately when the cursor has already been passed")
    func alreadyPassed() async {
        let signal = EventSignal()
        signal.notify(10)
        #expect(await Self.finishes { await signal.wait(beyond: 5, timeout: .seconds(3600)) })
    }

    @Test("a cancelled wait returns at once")
    func cancelled() async {
        let signal = EventSignal()
        let waiter = Task { await signal.wait(beyond: 0, timeout: .seconds(3600)) }
        waiter.cancel()
        #expect(await Self.finishes { await waiter.value })
    }

    @Test("wait returns after its timeout when nothing is notified")
    func timesOut() async {
        let signal = EventSignal()
        #expect(await Self.finishes { await signal.wait(beyond: 0, timeout: .milliseconds(50)) })
    }

    @Test("wakeAll releases every waiter")
    func wakeAll() async {
        let signal = EventSignal()
        let waker = Task {
            while !Task.isCancelled {
                signal.wakeAll()
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        defer { waker.cancel() }
        #expect(
            await Self.finishes {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<5 { group.addTask { await signal.wait(beyond: 100, timeout: .seconds(3600)) } }
                }
            })
    }
}
