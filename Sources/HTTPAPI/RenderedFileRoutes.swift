import BootEnvRendering
import Foundation
import Hummingbird
import Logging
import NetworkPrimitives
import ProvisioningModel

/// The files a boot environment declares, rendered on request for the machine asking and never
/// written to disk:
/// - `/boot/<mac>.ipxe`: the iPXE script (the file named `ipxe`). Unknown MACs get `unknownBootEnv`
///   (discovery), or a script that hands back to the firmware when unknown machines are ignored.
/// - `/machines/<id>/…`: every other declared file, found by its rendered `path`
///   (`machines/{{ machine.id }}/preseed.cfg`).
///
/// Each file served to a known machine is noted `fileServed` in its history; a file that cannot be
/// rendered is a 500 with the reason in plain text (what an installer shows on its console), never
/// half a file, and noted `renderFailed`.
struct RenderedFileRoutes: Sendable {
    let files: MachineFileRenderer
    let unknownBootEnv: String?
    let logger: Logger

    static let actor = "boot-plane"

    func register(in router: Router<BasicRequestContext>) {
        router.get("/boot/:script") { request, context in
            // Clients may percent-encode the MAC's colons (iPXE does); the URLs Anvil hands out use hyphens.
            let raw = try context.parameters.require("script")
            let script = raw.removingPercentEncoding ?? raw
            guard script.hasSuffix(".ipxe"), let mac = MACAddress(script.dropLast(5)) else {
                throw APIError(.notFound, code: "not_found", message: "boot scripts are /boot/<mac>.ipxe, not \(script)")
            }
            let machine = try await files.machine(mac: mac)
            guard let bootEnv = machine?.bootEnv ?? unknownBootEnv else {
                return TextResponse.make("#!ipxe\necho Anvil: unknown machine \(mac), not provisioned here\nexit 1\n")
            }
            return try await serve(
                .named(BootEnvTemplate.ipxeScriptName), path: "boot/\(script)", mac: mac, machine: machine, bootEnv: bootEnv,
                request: request)
        }
        router.get("/machines/:id/**") { request, context in
            let id = try context.parameters.require("id")
            guard let machineID = ObjectID(id) else {
                throw APIError(
                    .notFound, code: "not_found", message: "machine files are /machines/<machine id>/…, and '\(id)' is no id")
            }
            let machine = try await files.machine(id: machineID)
            let path = String(request.uri.path.dropFirst())
            return try await serve(
                .path(path.removingPercentEncoding ?? path), path: path, mac: nil, machine: machine, bootEnv: machine.bootEnv,
                request: request)
        }
    }

    private func serve(
        _ selection: MachineFileRenderer.Selection, path: String, mac: MACAddress?, machine: Machine?, bootEnv: String,
        request: Request
    ) async throws -> Response {
        let bootURL = "http://\(request.head.authority ?? "localhost")"
        let rendered: MachineFileRenderer.RenderedFile
        do {
            guard let file = try await files.render(selection, mac: mac, machine: machine, bootEnv: bootEnv, bootURL: bootURL)
            else {
                // Every machine boots through its iPXE script: a boot environment without one is broken
                // content, not a wrong URL.
                if case .named(let name) = selection {
                    throw RenderError(
                        template: bootEnv, message: "boot environment \(bootEnv) declares no template named \(name)")
                }
                throw APIError(.notFound, code: "not_found", message: "boot environment \(bootEnv) declares no file at \(path)")
            }
            rendered = file
        } catch let error as RenderError {
            logger.error(
                "rendering failed",
                metadata: [
                    "machine": "\(machine?.name ?? mac.map(\.description) ?? "unknown")", "bootenv": "\(bootEnv)",
                    "path": "\(path)", "problem": "\(error)",
                ])
            let reason = "render_failed: \(path) (boot environment \(bootEnv)): \(error)"
            await note(
                .renderFailed, machine: machine,
                detail: [
                    "path": .string(path), "bootenv": .string(bootEnv), "template": .string(error.template),
                    "message": .string(reason),
                ])
            return TextResponse.make(reason + "\n", status: .internalServerError)
        }
        await note(
            .fileServed, machine: machine,
            detail: ["path": .string(path), "bootenv": .string(bootEnv), "template": .string(rendered.template)])
        return TextResponse.make(rendered.text)
    }

    /// Adds to a known machine's history. The machine still gets its answer when the note cannot be
    /// written: a full disk must not also stop machines from booting.
    private func note(_ action: InventoryEvent.Action, machine: Machine?, detail: [String: JSONValue]) async {
        guard let machine else { return }
        do {
            try await files.store.record(
                [InventoryNote(action: action, kind: .machine, key: machine.key, detail: .object(detail))], actor: Self.actor)
        } catch {
            logger.error(
                "could not note a served file",
                metadata: ["machine": "\(machine.name)", "action": "\(action)", "error": "\(error)"])
        }
    }
}
