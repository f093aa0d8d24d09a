import BootPolicy
import Foundation
import NetworkPrimitives
import ProvisioningModel
import Synchronization

/// What the DHCP server needs of each machine, by MAC, in memory: a boot answer must not wait on a
/// database read. Loaded at start and kept current from the inventory's event log (changes arrive
/// within milliseconds of their commit).
final class MachineDirectory: Sendable {
    private struct State {
        var byMAC: [MACAddress: KnownMachine] = [:]
        var macsByKey: [String: [MACAddress]] = [:]
    }

    private let state = Mutex(State())

    func load(_ machines: [Machine]) {
        state.withLock { state in
            state = State()
            for machine in machines { Self.insert(machine, into: &state) }
        }
    }

    func machine(_ mac: MACAddress) -> KnownMachine { state.withLock { $0.byMAC[mac] ?? .unknown } }

    /// Applies one machine event; events of other kinds are ignored, and so are notes (a file served,
    /// a discovery): they carry their detail, not the machine, and the machine has not changed.
    func apply(_ event: InventoryEvent) {
        guard event.kind == .machine, event.action.changesObject else { return }
        let machine = event.object.flatMap { try? JSONDecoder().decode(Machine.self, from: JSONEncoder().encode($0)) }
        state.withLock { state in
            for mac in state.macsByKey.removeValue(forKey: event.key) ?? [] { state.byMAC[mac] = nil }
            if event.action != .deleted, let machine { Self.insert(machine, into: &state) }
        }
    }

    private static func insert(_ machine: Machine, into state: inout State) {
        let known = KnownMachine.known(name: machine.name, bootEnv: machine.bootEnv, state: machine.state)
        for mac in machine.macAddresses { state.byMAC[mac] = known }
        state.macsByKey[machine.key] = machine.macAddresses
    }
}
