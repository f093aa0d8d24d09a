import Foundation
import HTTPTypes
import Hummingbird
import NetworkPrimitives
import ProvisioningModel

/// List, get, create, replace, patch and delete for one kind of inventory object.
struct ObjectRoutes<Object: InventoryObject> {
    let store: any InventoryStore

    static var pageSizeLimit: Int { 1000 }

    func register(in catalog: RouteCatalog) {
        let kind = Object.kind
        let collection = kind.collection
        let item = "\(collection)/{key}"
        let schema = OpenAPIDocument.schemaName(kind)
        let filters = Object.filterFields.keys.sorted()
        catalog.add(.get, collection, role: .viewer, tag: collection, summary: "List \(collection)", query: filters + ["limit", "cursor"]) {
            request, _ in try await list(request)
        }
        catalog.add(.get, item, role: .viewer, tag: collection, summary: "Get one \(kind.rawValue)") { _, context in
            let stored = try await store.fetch(Object.self, key: try await key(context))
            return try JSONResponse.make(ObjectDocument(stored: stored), headers: [.eTag: etag(stored.meta)])
        }
        guard kind.isUserWritable else { return }
        catalog.add(.post, collection, role: .operator, tag: collection, summary: "Create a \(kind.rawValue)", requestSchema: schema) {
            request, context in try await create(request, context)
        }
        catalog.add(.put, item, role: .operator, tag: collection, summary: "Replace a \(kind.rawValue)", requestSchema: schema) {
            request, context in try await replace(request, context)
        }
        catalog.add(.patch, item, role: .operator, tag: collection, summary: "Change fields of a \(kind.rawValue) (JSON merge patch)", requestSchema: schema) {
            request, context in try await patch(request, context)
        }
        catalog.add(.delete, item, role: .operator, tag: collection, summary: "Delete a \(kind.rawValue)") { request, context in
            try await store.delete(Object.self, key: try await key(context), expectedRevision: try expectedRevision(request), actor: actor(context))
            return Response(status: .noContent)
        }
    }

    private func list(_ request: Request) async throws -> Response {
        var filters: [ListFilter] = []
        var limit = 100
        var cursor: String?
        for (name, value) in request.uri.queryParameters {
            switch name {
            case "limit":
                guard let parsed = Int(value), (1...Self.pageSizeLimit).contains(parsed) else {
                    throw APIError.badRequest("invalid_query", "limit must be a whole number from 1 to \(Self.pageSizeLimit)", field: "limit")
                }
                limit = parsed
            case "cursor":
                guard let decoded = PageCursor.decode(String(value)) else {
                    throw APIError.badRequest("invalid_cursor", "the cursor is not one this server issued", field: "cursor")
                }
                cursor = decoded
            case "filter":
                // `filter=memory>=64GiB`: comparisons that a plain `name=value` pair cannot carry.
                guard let filter = ListFilter(expression: String(value)) else {
                    throw APIError.badRequest("invalid_query", "a filter is field<op>value with op one of = != < <= > >=, got '\(value)'", field: "filter")
                }
                filters.append(try checked(filter))
            default:
                filters.append(try checked(ListFilter(field: String(name), value: String(value))))
            }
        }
        let page = try await store.list(Object.self, filters: filters, after: cursor, limit: limit)
        return try JSONResponse.make(
            ObjectList(items: page.items.map(ObjectDocument.init), nextCursor: page.nextCursor.map(PageCursor.encode)))
    }

    /// A filter on a field this kind has, with a MAC in its canonical form.
    private func checked(_ filter: ListFilter) throws -> ListFilter {
        var filter = filter
        let field = filter.field
        guard Object.filterFields[field] != nil else {
            let known = Object.filterFields.keys.sorted().joined(separator: ", ")
            throw APIError.badRequest(
                "unknown_filter",
                "\(Object.kind.collection) cannot be filtered by '\(field)'" + (known.isEmpty ? "" : " (filters: \(known))"),
                field: field)
        }
        if field == "mac" {
            guard let mac = MACAddress(filter.value) else {
                throw APIError.badRequest("invalid_query", "'\(filter.value)' is not a MAC address", field: field)
            }
            filter.value = mac.description
        }
        return filter
    }

    private func create(_ request: Request, _ context: AnvilRequestContext) async throws -> Response {
        let object = try RequestBody.decode(Object.self, from: try await RequestBody.json(request), knownFields: Object.fieldNames)
        let stored = try await store.create(object, actor: actor(context))
        return try JSONResponse.make(
            ObjectDocument(stored: stored), status: .created,
            headers: [.eTag: etag(stored.meta), .location: "/api/v1/\(Object.kind.collection)/\(stored.object.key)"])
    }

    private func replace(_ request: Request, _ context: AnvilRequestContext) async throws -> Response {
        let key = try await key(context)
        var body = try await RequestBody.json(request)
        if case .object(var members) = body, members[Object.kind.keyField] == nil {
            members[Object.kind.keyField] = .string(key)  // the URL names the object
            body = .object(members)
        }
        let object = try RequestBody.decode(Object.self, from: body, knownFields: Object.fieldNames)
        try requireSameKey(object, key)
        let stored = try await store.replace(object, expectedRevision: try expectedRevision(request), actor: actor(context))
        return try JSONResponse.make(ObjectDocument(stored: stored), headers: [.eTag: etag(stored.meta)])
    }

    /// RFC 7386 merge patch on the stored object. Without If-Match a concurrent writer is retried
    /// transparently; with it, the caller's revision must still be current (412 otherwise).
    private func patch(_ request: Request, _ context: AnvilRequestContext) async throws -> Response {
        let key = try await key(context)
        let patch = try await RequestBody.json(request)
        guard case .object = patch else {
            throw APIError(.unprocessableContent, code: "invalid", message: "a merge patch must be a JSON object")
        }
        let ifMatch = try expectedRevision(request)
        for attempt in 1...3 {
            let current = try await store.fetch(Object.self, key: key)
            let currentJSON = try JSONDecoder().decode(JSONValue.self, from: JSONResponse.encoder.encode(current.object))
            var members = patch.objectValue ?? [:]
            members.removeValue(forKey: "meta")
            let patched = currentJSON.merging(patch: .object(members))
            let object = try RequestBody.decode(Object.self, from: patched, knownFields: Object.fieldNames)
            try requireSameKey(object, key)
            do {
                let stored = try await store.replace(object, expectedRevision: ifMatch ?? current.meta.revision, actor: actor(context))
                return try JSONResponse.make(ObjectDocument(stored: stored), headers: [.eTag: etag(stored.meta)])
            } catch InventoryError.revisionMismatch where ifMatch == nil && attempt < 3 {
                continue
            }
        }
        throw APIError(.conflict, code: "busy", message: "\(Object.kind.rawValue) '\(key)' kept changing; try again")
    }

    private func requireSameKey(_ object: Object, _ key: String) throws {
        guard object.key == key else {
            let field = Object.kind.keyField
            throw APIError(
                .unprocessableContent, code: "invalid", message: "\(field) '\(object.key)' does not match the URL ('\(key)')",
                field: field, problems: [ValidationProblem(field: field, message: "does not match the URL")])
        }
    }

    /// The key from the URL, in canonical form. Machines can also be named by name.
    private func key(_ context: AnvilRequestContext) async throws -> String {
        let raw = try context.parameters.require("key")
        switch Object.kind {
        case .machine, .job:
            if let id = ObjectID(raw) { return id.description }
            if Object.kind == .machine, let machine = try await store.machine(named: raw) { return machine.object.key }
            throw APIError(.notFound, code: "not_found", message: "no \(Object.kind.rawValue) '\(raw)'")
        case .reservation:
            return MACAddress(raw)?.description ?? raw
        case .lease:
            return IPv4Address(raw)?.description ?? raw
        default:
            return raw
        }
    }
}

func actor(_ context: AnvilRequestContext) -> String { context.token.map { "token:\($0.name)" } ?? "anonymous" }

func etag(_ meta: ObjectMeta) -> String { "\"\(meta.revision)\"" }

/// The revision an If-Match header names; `nil` when absent or `*`.
func expectedRevision(_ request: Request) throws -> Int? {
    guard let raw = request.headers[.ifMatch]?.trimmingCharacters(in: .whitespaces), raw != "*" else { return nil }
    var text = Substring(raw)
    if text.hasPrefix("W/") { text = text.dropFirst(2) }
    if text.hasPrefix("\"") && text.hasSuffix("\"") && text.count >= 2 { text = text.dropFirst().dropLast() }
    guard let revision = Int(text), revision >= 1 else {
        throw APIError.badRequest("invalid_if_match", "If-Match must be an ETag this server issued, e.g. \"3\"", field: "If-Match")
    }
    return revision
}

/// List cursors are opaque to clients: the last key of the page, base64url-encoded.
enum PageCursor {
    static func encode(_ key: String) -> String {
        Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ cursor: String) -> String? {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).flatMap { String(data: $0, encoding: .utf8) }
    }
}
