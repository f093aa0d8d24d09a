import Foundation
import Hummingbird
import ProvisioningModel

/// A machine's history from the event log: created, discovered, every change, facts-changed diffs,
/// identity conflicts. Change events carry the whole machine, which the history leaves out
/// (`GET /api/v1/events` has it); notes keep their detail.
struct MachineHistoryRoutes {
    let store: any InventoryStore

    struct Entry: Encodable {
        var cursor: Int64
        var time: Date
        var action: InventoryEvent.Action
        var actor: String
        var state: String?
        var detail: JSONValue?
    }

    func register(in catalog: RouteCatalog) {
        catalog.add(.get, "machines/{key}/history", role: .viewer, tag: "machines",
            summary: "The machine's history, oldest first; ?action=factsChanged keeps one kind", query: ["action", "after", "limit"]) { request, context in
            let machine = try await lookUpMachine(try context.parameters.require("key"), in: store, field: "key")
            var actions: Set<InventoryEvent.Action>?
            if let text = request.uri.queryParameters["action"].map(String.init) {
                guard let action = InventoryEvent.Action(rawValue: text) else {
                    let known = InventoryEvent.Action.allCases.map(\.rawValue).joined(separator: ", ")
                    throw APIError.badRequest("invalid_query", "'\(text)' is not an event action (one of \(known))", field: "action")
                }
                actions = [action]
            }
            let after = Int64(request.uri.queryParameters["after"].map(String.init) ?? "0") ?? 0
            let limit = min(1000, Int(request.uri.queryParameters["limit"].map(String.init) ?? "1000") ?? 1000)
            let events = try await store.events(of: .machine, key: machine.object.key, actions: actions, after: after, limit: limit)
            let entries = events.map { event in
                let isChange = event.action.changesObject
                return Entry(
                    cursor: event.cursor, time: event.time, action: event.action, actor: event.actor,
                    state: isChange ? event.object?.objectValue?["state"]?.stringValue : nil, detail: isChange ? nil : event.object)
            }
            return try JSONResponse.make(["items": entries])
        }
    }
}
