import Hummingbird
import NetworkPrimitives
import ProvisioningModel

/// Why a machine booted what it booted: the DHCP server's latest answers per MAC.
struct BootDecisionRoutes {
    let store: any InventoryStore
    let decisions: BootDecisionLog

    struct Answer: Encodable {
        var macs: [MACAddress]
        var decisions: [BootDecisionRecord]
    }

    func register(in catalog: RouteCatalog) {
        catalog.add(.get, "machines/{key}/boot-decisions", role: .viewer, tag: "machines",
            summary: "The DHCP server's latest boot answers to the machine's MACs, newest first") { _, context in
            let machine = try await lookUpMachine(try context.parameters.require("key"), in: store, field: "key")
            let macs = machine.object.macAddresses
            return try JSONResponse.make(Answer(macs: macs, decisions: decisions.records(for: macs)))
        }
        catalog.add(.get, "boot-decisions", role: .viewer, tag: "machines",
            summary: "The DHCP server's latest boot answers to one MAC, known machine or not", query: ["mac"]) { request, _ in
            guard let text = request.uri.queryParameters["mac"].map(String.init), !text.isEmpty else {
                throw APIError.badRequest("missing_query", "say which MAC: ?mac=aa:bb:cc:dd:ee:ff", field: "mac")
            }
            guard let mac = MACAddress(text) else { throw APIError.badRequest("invalid_query", "'\(text)' is not a MAC address", field: "mac") }
            return try JSONResponse.make(Answer(macs: [mac], decisions: decisions.records(for: [mac])))
        }
    }
}

/// A machine named in a request by id or by name; 404 naming `field` when there is none.
func lookUpMachine(_ reference: String, in store: any InventoryStore, field: String) async throws -> Stored<Machine> {
    if let id = ObjectID(reference) { return try await store.fetch(Machine.self, key: id.description) }
    if let named = try await store.machine(named: reference) { return named }
    throw APIError(.notFound, code: "not_found", message: "no machine '\(reference)'", field: field)
}
