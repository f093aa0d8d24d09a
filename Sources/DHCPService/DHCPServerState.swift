import BootPolicy
import Foundation
import NetworkPrimitives
import ProvisioningModel
import Synchronization

/// The server's view of its subnets and their leases, shared by every socket. The pure pools do
/// the deciding; this type only picks the subnet a message belongs to and serializes access.
final class DHCPServerState: Sendable {
    enum Selection {
        case full(subnet: String)
        case proxy(Subnet)
    }

    enum SelectionError: Error {
        case noSubnet(String)
        case relayNotAllowed(IPv4Address)

        var metricReason: String {
            switch self {
            case .noSubnet: "no_subnet"
            case .relayNotAllowed: "relay_not_allowed"
            }
        }
    }

    private struct State {
        var subnets: [Subnet] = []
        var pools: [String: LeasePool] = [:]
    }

    private let state = Mutex(State())

    /// Installs subnets and reservations; pools of subnets that stay keep their leases and offers.
    func configure(subnets: [Subnet], reservations: [Reservation], leases: [Lease] = []) {
        state.withLock { state in
            state.subnets = subnets
            var pools: [String: LeasePool] = [:]
            for subnet in subnets where subnet.mode == .full {
                if var pool = state.pools[subnet.name] {
                    pool.reconfigure(subnet: subnet, reservations: reservations)
                    pools[subnet.name] = pool
                } else {
                    pools[subnet.name] = LeasePool(subnet: subnet, reservations: reservations, leases: leases)
                }
            }
            state.pools = pools
        }
    }

    /// The subnet a message is for: the relay's (only from a configured relay address) or the one
    /// holding one of the receiving interface's addresses.
    func select(relayAgent: IPv4Address?, interfaceAddresses: [IPv4Address]) throws(SelectionError) -> (Selection, serverAddress: IPv4Address?) {
        let subnets = state.withLock { $0.subnets }
        if let relayAgent {
            guard let subnet = subnets.first(where: { $0.network.contains(relayAgent) }) else {
                throw .noSubnet("no subnet contains relay address \(relayAgent)")
            }
            guard subnet.relayAddresses.contains(relayAgent) else { throw .relayNotAllowed(relayAgent) }
            return (subnet.mode == .full ? .full(subnet: subnet.name) : .proxy(subnet), nil)
        }
        for address in interfaceAddresses {
            if let subnet = subnets.first(where: { $0.network.contains(address) }) {
                return (subnet.mode == .full ? .full(subnet: subnet.name) : .proxy(subnet), address)
            }
        }
        throw .noSubnet("no subnet on this interface (\(interfaceAddresses.map(\.description).joined(separator: ", ")))")
    }

    /// Runs `body` on a subnet's pool under the lock; `nil` when the subnet is gone. The pool is
    /// changed in place: a copy taken out of the dictionary would copy every lease on each write.
    func withPool<T>(_ subnet: String, _ body: (inout LeasePool) -> T) -> T? {
        state.withLock { state in
            guard state.pools[subnet] != nil else { return nil }
            return body(&state.pools[subnet]!)
        }
    }

    /// Per full-mode subnet: addresses in the range and how many are held.
    func usage(now: Date) -> [(subnet: String, size: Int, held: Int)] {
        state.withLock { state in
            state.pools.map { name, pool in
                let usage = pool.usage(now: now)
                return (name, usage.size, usage.held)
            }
        }
    }

    func reclaimExpired(now: Date) -> [Lease] {
        state.withLock { state in
            var reclaimed: [Lease] = []
            for name in state.pools.keys { reclaimed += state.pools[name]!.reclaimExpired(now: now) }
            return reclaimed
        }
    }
}

/// Drops a copy of a message already being answered: the same client, transaction and type
/// within a second (a duplicated datagram, or two relays forwarding the same broadcast). A client's
/// own retransmission comes seconds later and is answered.
final class RecentRequests: Sendable {
    struct Key: Hashable {
        var mac: MACAddress
        var transactionID: UInt32
        var type: UInt8
    }

    private let window: TimeInterval
    private let seen = Mutex<[Key: Date]>([:])

    init(window: TimeInterval = 1) { self.window = window }

    /// True when the message is new; records it.
    func isNew(_ key: Key, now: Date) -> Bool {
        seen.withLock { seen in
            if seen.count > 10_000 { seen = seen.filter { now.timeIntervalSince($0.value) < window } }
            if let last = seen[key], now.timeIntervalSince(last) < window { return false }
            seen[key] = now
            return true
        }
    }
}
