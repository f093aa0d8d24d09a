import BootEnvRendering
import Foundation
import NetworkPrimitives
import ProvisioningModel

/// The one way a machine's files are rendered. The boot plane serves them through it and the admin
/// API's `render` previews them through it, so a preview is byte for byte what the machine gets.
public struct MachineFileRenderer: Sendable {
    public let store: any InventoryStore
    public let renderer: BootScriptRenderer
    public let tokens: MachineTokenAuthority
    private let cache = RenderCache()

    /// Long enough for a slow boot and an installer run, short enough that a leaked script soon stops working.
    static let scriptTokenLifetime: TimeInterval = 4 * 3600
    /// A rendered token's lifetime counts from the start of a 5-minute window, so every render in the
    /// window is the same text: the token is part of what `anvil render` must show exactly.
    static let tokenWindow: TimeInterval = 300

    public init(store: any InventoryStore, renderer: BootScriptRenderer, tokens: MachineTokenAuthority) {
        self.store = store
        self.renderer = renderer
        self.tokens = tokens
    }

    /// Which file of a boot environment to render.
    enum Selection: Sendable, Hashable {
        /// A declared file by its name in `templates:` (`ipxe`, `preseed`).
        case named(String)
        /// The declared file whose rendered `path` is this (`machines/<id>/preseed.cfg`).
        case path(String)
        /// Any template file, with the context of the boot environment.
        case template(String)
    }

    struct RenderedFile: Sendable, Hashable {
        /// The template file the text came from.
        var template: String
        var text: String
    }

    /// The machine with this MAC among its interfaces, or nil (an unknown machine).
    func machine(mac: MACAddress) async throws -> Machine? {
        try await cache.machine(mac: mac, generation) {
            try await store.list(Machine.self, filters: [ListFilter(field: "mac", value: mac.description)], after: nil, limit: 1)
                .items.first?.object
        }
    }

    /// The machine with this id; throws `InventoryError.notFound` when there is none.
    func machine(id: ObjectID) async throws -> Machine {
        try await cache.machine(id: id, generation) { try await store.fetch(Machine.self, key: id.description).object }
    }

    private var generation: RenderCache.Generation {
        RenderCache.Generation(objects: store.objectChangeCount, templates: renderer.templateGeneration)
    }

    /// Renders the selected file of `bootEnv` for the machine (nil for an unknown MAC), as booted from
    /// `mac` (default: its boot NIC); nil when the boot environment declares no such file. A file that
    /// cannot be rendered throws `RenderError`. The same inputs in the same token window give the same
    /// text, so it comes from the cache until the inventory or a template changes.
    func render(
        _ selection: Selection, mac: MACAddress? = nil, machine: Machine?, bootEnv bootEnvName: String, bootURL: String,
        now: Date = Date()
    ) async throws -> RenderedFile? {
        // A machine without interfaces still gets its files; its MAC is then only a placeholder.
        let mac = mac ?? machine?.bootMAC ?? MACAddress(0, 0, 0, 0, 0, 0)
        let windowStart = Date(
            timeIntervalSince1970: (now.timeIntervalSince1970 / Self.tokenWindow).rounded(.down) * Self.tokenWindow)
        let generation = generation
        let key = RenderCache.FileKey(
            selection: selection, mac: mac, machine: machine?.id, bootEnv: bootEnvName, bootURL: bootURL, window: windowStart)
        return try await cache.file(key, generation) {
            let inputs = try await cache.inputs(generation, load: loadInputs)
            guard let bootEnv = inputs.bootEnvs[bootEnvName] else {
                throw InventoryError.notFound(what: "bootenv", key: bootEnvName)
            }
            var subject = RenderSubject(
                mac: mac, machine: machine, bootEnv: bootEnv, params: resolvedParams(for: machine, bootEnv: bootEnvName, inputs),
                bootURL: bootURL)
            subject.token = machine.map { tokens.issue(for: $0.id, validFor: Self.scriptTokenLifetime, now: windowStart) }
            return try render(selection, for: subject)
        }
    }

    /// One param's value for the machine through the attribute chain, from the same cached inputs
    /// rendering uses; nil when no layer sets it and it has no default.
    func param(_ name: String, for machine: Machine) async throws -> JSONValue? {
        let inputs = try await cache.inputs(generation, load: loadInputs)
        let chain = AttributeChain(
            machine: machine, profiles: machine.profiles.compactMap { inputs.profiles[$0] },
            global: inputs.profiles[Profile.globalName])
        return chain.resolve(name, definition: inputs.params.first { $0.name == name }).value
    }

    private func render(_ selection: Selection, for subject: RenderSubject) throws(RenderError) -> RenderedFile? {
        let file: BootEnvTemplate
        switch selection {
        case .template(let path):
            return RenderedFile(template: path, text: try renderer.render(template: path, for: subject))
        case .named(let name):
            guard let declared = subject.bootEnv.templates.first(where: { $0.name == name }) else { return nil }
            file = declared
        case .path(let path):
            guard let declared = try renderer.declaredFile(at: path, for: subject) else { return nil }
            file = declared
        }
        return RenderedFile(template: file.template, text: try renderer.render(file, for: subject))
    }

    private func loadInputs() async throws -> RenderCache.Inputs {
        let bootEnvs = try await store.all(BootEnv.self)
        let profiles = try await store.all(Profile.self)
        return RenderCache.Inputs(
            bootEnvs: Dictionary(bootEnvs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first }),
            params: try await store.all(Param.self),
            profiles: Dictionary(profiles.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first }))
    }

    /// Every defined param through the attribute chain, plus values set without a definition.
    private func resolvedParams(for machine: Machine?, bootEnv: String, _ inputs: RenderCache.Inputs) -> [String: JSONValue] {
        let global = inputs.profiles[Profile.globalName]
        let profiles = (machine?.profiles ?? []).compactMap { inputs.profiles[$0] }
        let subject = machine ?? Machine(name: "unknown", bootEnv: bootEnv)
        let chain = AttributeChain(machine: subject, profiles: profiles, global: global)
        var names = Set(inputs.params.map(\.name)).union(subject.params.keys).union(global?.params.keys ?? [:].keys)
        for profile in profiles { names.formUnion(profile.params.keys) }
        let byName = Dictionary(inputs.params.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var values: [String: JSONValue] = [:]
        for name in names {
            if let value = chain.resolve(name, definition: byName[name]).value { values[name] = value }
        }
        return values
    }
}
