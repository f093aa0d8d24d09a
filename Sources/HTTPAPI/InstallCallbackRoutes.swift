import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import ProvisioningModel

/// The installers' callback on the boot plane: `POST /machines/<id>/installed`, with the token their
/// rendered file carries (`?token=`, or `Authorization: Bearer`). Preseed, autoinstall, kickstart and
/// the image-deploy task call it when the system is on the disk.
///
/// The machine then boots what comes after an install (the param `boot-after-install`, `local` by
/// default) and is `deployed`, with an `installed` note, in one transaction. A repeated call (a retried
/// wget) finds it done and records nothing. Answers `{"machine", "name", "bootEnv", "state"}`;
/// installers ignore it.
struct InstallCallbackRoutes: Sendable {
    let files: MachineFileRenderer
    let logger: Logger

    static let actor = "install-callback"

    func register(in router: Router<BasicRequestContext>) {
        router.post("/machines/:id/installed") { request, context in
            let id = try context.parameters.require("id")
            let machineID = try authenticate(request, for: id)
            let before = try await files.store.fetch(Machine.self, key: machineID.description)
            let machine = before.object
            let next = try await nextBootEnv(for: machine)
            let stored: Stored<Machine>
            do {
                stored = try await files.store.update(Machine.self, key: machine.key, actor: Self.actor) { current in
                    let steps = try InstallCompletion.steps(for: current, bootingNext: next)
                    guard let last = steps.last else { return ([], []) }
                    return (steps, [InstallCompletion.note(from: current, to: last)])
                }
            } catch let refusal as InstallCompletion.Refusal {
                Counter(label: "anvil_install_callbacks_total", dimensions: [("outcome", "refused")]).increment()
                logger.warning(
                    "install callback refused", metadata: ["machine": "\(machine.name)", "problem": "\(refusal.message)"])
                throw APIError(.conflict, code: "machine_not_installing", message: refusal.message, field: "state")
            }
            // The same revision: nothing was written (a repeated call), or another writer got in between.
            let outcome = stored.meta.revision == before.meta.revision ? "unchanged" : "installed"
            Counter(label: "anvil_install_callbacks_total", dimensions: [("outcome", outcome)]).increment()
            logger.info(
                "install finished",
                metadata: [
                    "machine": "\(stored.object.name)", "bootenv": "\(stored.object.bootEnv)",
                    "state": "\(stored.object.state.rawValue)",
                ])
            return try JSONResponse.make(
                InstalledAnswer(
                    machine: stored.object.id.description, name: stored.object.name, bootEnv: stored.object.bootEnv,
                    state: stored.object.state.rawValue))
        }
    }

    /// `boot-after-install` through the machine's attribute chain, else `local`.
    private func nextBootEnv(for machine: Machine) async throws -> String {
        guard let value = try await files.param(InstallCompletion.nextBootEnvParam, for: machine) else {
            return InstallCompletion.defaultNextBootEnv
        }
        guard let name = value.stringValue else {
            throw APIError(
                .unprocessableContent, code: "invalid_param",
                message: "param \(InstallCompletion.nextBootEnvParam) must name a boot environment, not a \(value.typeName)",
                field: "params.\(InstallCompletion.nextBootEnvParam)")
        }
        return name
    }

    /// The machine the request's token is for, which must be `id`. Installers pass it in the query
    /// (a wget one-liner cannot easily set a header); a bearer header works too.
    private func authenticate(_ request: Request, for id: String) throws -> ObjectID {
        guard let token = AgentRoutes.bearerToken(request) ?? request.uri.queryParameters["token"].map(String.init),
            !token.isEmpty
        else {
            throw APIError(
                .unauthorized, code: "machine_token_required",
                message:
                    "the install callback needs the machine's token (?token= from its rendered file, or Authorization: Bearer)")
        }
        return try AgentRoutes.machine(of: token, for: id, tokens: files.tokens)
    }
}

/// What the install callback answers: the machine as it is now.
struct InstalledAnswer: Encodable {
    var machine: String
    var name: String
    var bootEnv: String
    var state: String
}
