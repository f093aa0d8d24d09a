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
    enum Selection: Sendable {
        /// A declared file by its name in `templates:` (`ipxe`, `preseed`).
        case named(String)
        /// The declared file whose rendered `path` is this (`machines/<id>/preseed.cfg`).
        case path(String)
        /// Any template file, with the context of the boot environment.
        case template(String)
    }

    struct RenderedFile: Sendable {
        /// The template file the text came from.
        var template: String
        var text: String
    }

    /// Renders the selected file of `bootEnv` for the machine (nil for an unknown MAC), as booted from
    /// `mac` (default: its boot NIC); nil when the boot environment declares no such file. A file that
    /// cannot be rendered throws `RenderError`.
    func render(
        _ selection: Selection, mac: MACAddress? = nil, machine: Machine?, bootEnv bootEnvName: String, bootURL: String,
        now: Date = Date()
    ) async throws -> RenderedFile? {
        let bootEnv = try await store.fetch(BootEnv.self, key: bootEnvName).object
        // A machine without interfaces still gets its files; its MAC is then only a placeholder.
        let mac = mac ?? machine?.bootMAC ?? MACAddress(0, 0, 0, 0, 0, 0)
        var subject = RenderSubject(
            mac: mac, machine: machine, bootEnv: bootEnv, params: try await resolvedParams(for: machine, bootEnv: bootEnvName),
            bootURL: bootURL)
        let windowStart = Date(
            timeIntervalSince1970: (now.timeIntervalSince1970 / Self.tokenWindow).rounded(.down) * Self.tokenWindow)
        subject.token = machine.map { tokens.issue(for: $0.id, validFor: Self.scriptTokenLifetime, now: windowStart) }

        let file: BootEnvTemplate
        switch selection {
        case .template(let path):
            return RenderedFile(template: path, text: try renderer.render(template: path, for: subject))
        case .named(let name):
            guard let declared = bootEnv.templates.first(where: { $0.name == name }) else { return nil }
            file = declared
        case .path(let path):
            guard let declared = try renderer.declaredFile(at: path, for: subject) else { return nil }
            file = declared
        }
        return RenderedFile(template: file.template, text: try renderer.render(file, for: subject))
    }

    /// Every defined param through the attribute chain, plus values set without a definition.
    private func resolvedParams(for machine: Machine?, bootEnv: String) async throws -> [String: JSONValue] {
        let definitions = try await store.all(Param.self)
        let global = try? await store.fetch(Profile.self, key: Profile.globalName).object
        var profiles: [Profile] = []
        for name in machine?.profiles ?? [] {
            if let profile = try? await store.fetch(Profile.self, key: name).object { profiles.append(profile) }
        }
        let subject = machine ?? Machine(name: "unknown", bootEnv: bootEnv)
        let chain = AttributeChain(machine: subject, profiles: profiles, global: global)
        var names = Set(definitions.map(\.name)).union(subject.params.keys).union(global?.params.keys ?? [:].keys)
        for profile in profiles { names.formUnion(profile.params.keys) }
        let byName = Dictionary(definitions.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var values: [String: JSONValue] = [:]
        for name in names {
            if let value = chain.resolve(name, definition: byName[name]).value { values[name] = value }
        }
        return values
    }
}
