import BootEnvRendering
import Foundation
import Hummingbird
import ProvisioningModel

/// `GET /machines/{key}/render`: a file rendered for the machine exactly as the boot plane would
/// serve it, without booting anything (`anvil render`).
/// - `?bootenv=<name>&file=<declared name>`: a file the boot environment declares (default: the
///   machine's boot environment and its `ipxe` script);
/// - `?template=<path under templates/>`: any template, with that boot environment's context.
/// - `?bootURL=http://…`: the boot plane as the machine reaches it (the boot plane takes it from the
///   request's Host); default: where the boot plane listens.
///
/// Operator role: the text carries a live machine token, as the machine's copy does.
struct MachineRenderRoutes {
    let files: MachineFileRenderer
    let listeners: @Sendable () async -> [String: String]

    func register(in catalog: RouteCatalog) {
        catalog.add(
            .get, "machines/{key}/render", role: .operator, tag: "machines",
            summary: "A file rendered for the machine, byte for byte what the boot plane serves it (text/plain)",
            query: ["bootenv", "file", "template", "bootURL"]
        ) { request, context in
            let machine = try await lookUpMachine(try context.parameters.require("key"), in: files.store, field: "key").object
            let query = request.uri.queryParameters
            let bootEnv = query["bootenv"].map(String.init) ?? machine.bootEnv
            let file = query["file"].map(String.init)
            let template = query["template"].map(String.init)
            if file != nil && template != nil {
                throw APIError.badRequest(
                    "invalid_query", "give ?file (a declared file) or ?template (any template), not both", field: "template")
            }
            let listening = await listeners()["boot"] ?? "http://localhost"
            let bootURL = query["bootURL"].map(String.init) ?? listening
            guard bootURL.hasPrefix("http://") || bootURL.hasPrefix("https://") else {
                throw APIError.badRequest(
                    "invalid_query", "bootURL must be an http:// or https:// URL, not '\(bootURL)'", field: "bootURL")
            }
            let declared: [BootEnvTemplate]
            do {
                declared = try await files.store.fetch(BootEnv.self, key: bootEnv).object.templates
            } catch InventoryError.notFound {
                throw APIError(.notFound, code: "not_found", message: "no bootenv '\(bootEnv)'", field: "bootenv")
            }
            let wanted = file ?? BootEnvTemplate.ipxeScriptName
            let selection: MachineFileRenderer.Selection = template.map { .template($0) } ?? .named(wanted)
            do {
                guard let rendered = try await files.render(selection, machine: machine, bootEnv: bootEnv, bootURL: bootURL)
                else {
                    let names = declared.map(\.name).joined(separator: ", ")
                    throw APIError(
                        .notFound, code: "not_found",
                        message: "boot environment \(bootEnv) declares no file '\(wanted)' (it declares: \(names))",
                        field: "file")
                }
                return TextResponse.make(rendered.text)
            } catch let error as RenderError {
                // The request is fine; the content cannot be rendered for this machine (a param unset, a broken template).
                throw APIError(
                    .unprocessableContent, code: "render_failed", message: "\(error)",
                    field: template == nil ? "file" : "template")
            }
        }
    }
}
