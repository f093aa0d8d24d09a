import Foundation
import NetworkPrimitives
import Synchronization

/// One answer the DHCP server gave a booting client: what it asked, what it was told, and why.
public struct BootDecisionRecord: Codable, Sendable, Hashable {
    public var time: Date
    public var mac: MACAddress
    /// The client's message (`discover`, `request`, …) and where it came from (`srv0`, `relay 10.1.0.1`).
    public var message: String
    public var via: String
    /// Option 93, 60 and 77 as the client sent them.
    public var architecture: String?
    public var vendorClass: String?
    public var userClasses: [String]
    /// `tftp undionly.kpxe`, `http <url>`, `ipxe-script <url>` or `none`.
    public var answer: String
    public var reason: String
    /// The address offered or acknowledged, if any.
    public var address: String?

    public init(
        time: Date, mac: MACAddress, message: String, via: String, architecture: String?, vendorClass: String?, userClasses: [String],
        answer: String, reason: String, address: String?
    ) {
        self.time = time
        self.mac = mac
        self.message = message
        self.via = via
        self.architecture = architecture
        self.vendorClass = vendorClass
        self.userClasses = userClasses
        self.answer = answer
        self.reason = reason
        self.address = address
    }
}

/// The latest boot decisions per MAC, in memory and bounded: enough to see why a machine booted
/// what it booted. Not kept across restarts (the durable history of a machine is its event log).
public final class BootDecisionLog: Sendable {
    private struct State {
        var byMAC: [MACAddress: [BootDecisionRecord]] = [:]
        /// MACs in the order they last appeared, oldest first, to forget the oldest beyond the bound.
        var order: [MACAddress] = []
    }

    private let perMAC: Int
    private let maximumMACs: Int
    private let state = Mutex(State())

    public init(perMAC: Int = 20, maximumMACs: Int = 20_000) {
        self.perMAC = perMAC
        self.maximumMACs = maximumMACs
    }

    public func record(_ record: BootDecisionRecord) {
        state.withLock { state in
            if state.byMAC[record.mac] == nil {
                state.order.append(record.mac)
                if state.order.count > maximumMACs {
                    // Forget the oldest half at once: amortized O(1) per record.
                    let forgotten = state.order.prefix(state.order.count - maximumMACs / 2)
                    for mac in forgotten { state.byMAC[mac] = nil }
                    state.order.removeFirst(forgotten.count)
                }
            }
            state.byMAC[record.mac, default: []].append(record)
            if state.byMAC[record.mac]!.count > perMAC { state.byMAC[record.mac]!.removeFirst() }
        }
    }

    /// Newest first.
    public func records(for macs: [MACAddress]) -> [BootDecisionRecord] {
        state.withLock { state in macs.flatMap { state.byMAC[$0] ?? [] } }.sorted { $0.time > $1.time }
    }
}
