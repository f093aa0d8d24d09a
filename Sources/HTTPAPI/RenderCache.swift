import Foundation
import NetworkPrimitives
import ProvisioningModel
import Synchronization

/// What rendering reads from the inventory (boot environments, params, profiles, machines by MAC or
/// id) and the files it rendered, kept in memory while nothing changes. A boot storm asks for the same
/// few boot environments thousands of times a second; without this every script costs several
/// database reads and a template render.
///
/// Staleness is decided by generations, not by time: the store's `objectChangeCount` and the
/// renderer's `templateGeneration`. A snapshot is taken under the generations read *before* its data
/// is read, so a change committed meanwhile makes it stale at once rather than hiding behind it.
final class RenderCache: Sendable {
    struct Generation: Hashable {
        var objects: Int64
        var templates: Int
    }

    /// Everything a rendered file depends on besides the inventory and the templates.
    struct FileKey: Hashable {
        var selection: MachineFileRenderer.Selection
        var mac: MACAddress
        var machine: ObjectID?
        var bootEnv: String
        var bootURL: String
        /// The start of the token window: the token in the text is the same within it.
        var window: Date
    }

    struct Inputs: Sendable {
        var bootEnvs: [String: BootEnv]
        var params: [Param]
        var profiles: [String: Profile]
    }

    private struct Snapshot {
        var generation: Generation
        var inputs: Inputs?
        /// nil values are MACs known to belong to no machine (unknown machines ask again and again).
        var machinesByMAC: [MACAddress: Machine?] = [:]
        var machinesByID: [ObjectID: Machine] = [:]
        var files: [FileKey: MachineFileRenderer.RenderedFile] = [:]
    }

    /// Bound on machines and files held per snapshot (a scan of random MACs must not fill memory).
    static let entryLimit = 100_000
    private let snapshot = Mutex(Snapshot(generation: Generation(objects: -1, templates: -1)))

    /// The cached value for `generation`, or nil when there is none or the snapshot is older.
    private func cached<T>(_ generation: Generation, _ read: (inout Snapshot) -> T?) -> T? {
        snapshot.withLock { snapshot in
            guard snapshot.generation == generation else { return nil }
            return read(&snapshot)
        }
    }

    /// Stores under `generation`: a newer generation replaces the whole snapshot; an older one is dropped.
    private func store(_ generation: Generation, _ write: (inout Snapshot) -> Void) {
        snapshot.withLock { snapshot in
            if snapshot.generation != generation {
                guard generation.objects >= snapshot.generation.objects, generation.templates >= snapshot.generation.templates
                else { return }
                snapshot = Snapshot(generation: generation)
            }
            write(&snapshot)
        }
    }

    func inputs(_ generation: Generation, load: () async throws -> Inputs) async throws -> Inputs {
        if let inputs = cached(generation, { $0.inputs }) { return inputs }
        let inputs = try await load()
        store(generation) { $0.inputs = inputs }
        return inputs
    }

    func machine(mac: MACAddress, _ generation: Generation, load: () async throws -> Machine?) async throws -> Machine? {
        if let known = cached(generation, { $0.machinesByMAC[mac] }) { return known }
        let machine = try await load()
        store(generation) { snapshot in
            if snapshot.machinesByMAC.count >= Self.entryLimit { snapshot.machinesByMAC.removeAll() }
            snapshot.machinesByMAC[mac] = .some(machine)
        }
        return machine
    }

    func machine(id: ObjectID, _ generation: Generation, load: () async throws -> Machine) async throws -> Machine {
        if let known = cached(generation, { $0.machinesByID[id] }) { return known }
        let machine = try await load()
        store(generation) { snapshot in
            if snapshot.machinesByID.count >= Self.entryLimit { snapshot.machinesByID.removeAll() }
            snapshot.machinesByID[id] = machine
        }
        return machine
    }

    /// A rendered file; files that failed to render are not kept (each failure is noted again).
    func file(
        _ key: FileKey, _ generation: Generation, render: () async throws -> MachineFileRenderer.RenderedFile?
    ) async throws -> MachineFileRenderer.RenderedFile? {
        if let file = cached(generation, { $0.files[key] }) { return file }
        guard let file = try await render() else { return nil }
        store(generation) { snapshot in
            if snapshot.files.count >= Self.entryLimit { snapshot.files.removeAll() }
            snapshot.files[key] = file
        }
        return file
    }
}
