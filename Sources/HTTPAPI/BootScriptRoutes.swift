import BootEnvRendering
import Foundation
import Hummingbird
import Logging
import NetworkPrimitives
import ProvisioningModel

/// `/boot/<mac>.ipxe`: the iPXE script of the machine's current boot environment, rendered on
/// request and never written to disk. Unknown MACs get `unknownBootEnv` (discovery), or a script
/// that hands back to the firmware when unknown machines are ignored.
struct BootScriptRoutes: Sendable {
    let store: any InventoryStore
    let renderer: BootScriptRenderer
    let unknownBootEnv: String?
    let tokens: MachineTokenAuthority
    let logger: Logger

    /// Long enough for a slow boot and an installer run, short enough that a leaked script soon stops working.
    static let scriptTokenLifetime: TimeInterval = 4 * 3600

    func register(in router: Router<BasicRequestContext>) {
        router.get("/boot/:script") { request, context in
            // Clients may percent-encode the MAC's colons (iPXE does); the URLs Anvil hands out use hyphens.
            let raw = try context.parameters.require("script")
            let script = raw.removingPercentEncoding ?? raw
            guard script.hasSuffix(".ipxe"), let mac = MACAddress(script.dropLast(5)) else {
                throw APIError(.notFound, code: "not_found", message: "boot scripts are /boot/<mac>.ipxe, not \(script)")
            }
            return try await render(mac: mac, request: request)
        }
    }

    private func render(mac: MACAddress, request: Request) async throws -> Response {
        let machine = try await store.list(Machine.self, filters: [ListFilter(field: "mac", value: mac.description)], after: nil, limit: 1)
            .items.first?.object
        guard let bootEnvName = machine?.bootEnv ?? unknownBootEnv else {
            return Self.text("#!ipxe\necho Anvil: unknown machine \(mac), not provisioned here\nexit 1\n")
        }
        let bootEnv = try await store.fetch(BootEnv.self, key: bootEnvName).object
        let host = request.head.authority ?? "localhost"
        var subject = RenderSubject(
            mac: mac, machine: machine, bootEnv: bootEnv, params: try await resolvedParams(for: machine), bootURL: "http://\(host)")
        subject.token = machine.map { tokens.issue(for: $0.id, validFor: Self.scriptTokenLifetime, now: Date()) }
        do {
            return Self.text(try renderer.ipxeScript(for: subject))
        } catch {
            // Half a script would boot something wrong: the whole request fails, with the reason.
            logger.error("boot script rendering failed", metadata: ["mac": "\(mac)", "bootenv": "\(bootEnvName)", "problem": "\(error)"])
            throw APIError(.internalServerError, code: "render_failed", message: "\(error)")
        }
    }

    /// Every defined param through the attribute chain, plus values set without a definition.
    private func resolvedParams(for machine: Machine?) async throws -> [String: JSONValue] {
        let definitions = try await store.all(Param.self)
        let global = try? await store.fetch(Profile.self, key: Profile.globalName).object
        var profiles: [Profile] = []
        for name in machine?.profiles ?? [] {
            if let profile = try? await store.fetch(Profile.self, key: name).object { profiles.append(profile) }
        }
        let subject = machine ?? Machine(name: "unknown", bootEnv: unknownBootEnv ?? "discovery")
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

    private static func text(_ body: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
