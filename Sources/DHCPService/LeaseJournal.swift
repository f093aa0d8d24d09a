import ProvisioningModel

/// Group commit of lease changes: every change that arrives while a write is on disk goes into the
/// next write together, so a burst of ACKs costs one transaction (and one disk sync) per batch
/// instead of one per client. `commit` returns once the caller's leases are durable.
actor LeaseJournal {
    private let store: any InventoryStore
    private var pending: [Lease] = []
    private var waiters: [CheckedContinuation<Void, any Error>] = []
    private var writing = false

    init(store: any InventoryStore) { self.store = store }

    func commit(_ leases: [Lease]) async throws {
        guard !leases.isEmpty else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            pending += leases
            waiters.append(continuation)
            if !writing {
                writing = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !pending.isEmpty {
            // The latest change of an address wins within a batch.
            var latest: [String: Lease] = [:]
            var order: [String] = []
            for lease in pending {
                if latest.updateValue(lease, forKey: lease.key) == nil { order.append(lease.key) }
            }
            let batch = order.compactMap { latest[$0] }
            let batchWaiters = waiters
            pending = []
            waiters = []
            do {
                try await store.upsert(batch, actor: "dhcp")
                for waiter in batchWaiters { waiter.resume() }
            } catch {
                for waiter in batchWaiters { waiter.resume(throwing: error) }
            }
        }
        writing = false
    }
}
