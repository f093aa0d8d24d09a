import ApplianceTesting
import Foundation
import HTTPTypes
import ProvisioningModel
import SQLiteInventory
import Testing

/// Every route of the admin API: the OpenAPI path, a concrete path naming an object of `World`, and
/// the least role that may call it (`nil`: public). The OpenAPI document must list exactly these.
struct Route: Sendable, Hashable, CustomTestStringConvertible {
    var method: HTTPRequest.Method
    var template: String
    var example: String
    var role: Role?
    /// Follows the event log forever: exercised live by `EventTests`, not by the in-process sweep.
    var streams = false

    var testDescription: String { "\(method) \(template)" }

    static let writable: [(collection: String, key: String)] = [
        ("machines", World.machineID), ("subnets", World.subnet), ("reservations", World.reservationMAC),
        ("bootenvs", "local"), ("params", World.param), ("profiles", World.rackProfile), ("tasks", World.task),
        ("stages", World.stage), ("workflows", World.workflow),
    ]
    static let readOnly: [(collection: String, key: String)] = [("jobs", World.jobID), ("leases", World.leaseAddress)]

    static let all: [Route] = {
        var routes: [Route] = []
        for (collection, key) in writable + readOnly {
            let base = "/api/v1/\(collection)"
            routes.append(Route(method: .get, template: base, example: base, role: .viewer))
            routes.append(Route(method: .get, template: "\(base)/{key}", example: "\(base)/\(key)", role: .viewer))
            guard writable.contains(where: { $0.collection == collection }) else { continue }
            routes.append(Route(method: .post, template: base, example: base, role: .operator))
            for method in [HTTPRequest.Method.put, .patch, .delete] {
                routes.append(Route(method: method, template: "\(base)/{key}", example: "\(base)/\(key)", role: .operator))
            }
        }
        routes += [
            Route(
                method: .get, template: "/api/v1/params/{key}/resolve",
                example: "/api/v1/params/\(World.param)/resolve?machine=\(World.machineName)", role: .viewer),
            Route(
                method: .get, template: "/api/v1/machines/{key}/boot-decisions", example: "/api/v1/machines/\(World.machineName)/boot-decisions",
                role: .viewer),
            Route(
                method: .get, template: "/api/v1/machines/{key}/history", example: "/api/v1/machines/\(World.machineName)/history",
                role: .viewer),
            Route(
                method: .get, template: "/api/v1/machines/{key}/render",
                example: "/api/v1/machines/\(World.machineName)/render?template=ipxe/local.ipxe.tmpl", role: .operator),
            Route(method: .get, template: "/api/v1/boot-decisions", example: "/api/v1/boot-decisions?mac=52:54:00:00:00:01", role: .viewer),
            Route(method: .get, template: "/api/v1/events", example: "/api/v1/events?after=0", role: .viewer),
            Route(method: .get, template: "/api/v1/events/stream", example: "/api/v1/events/stream", role: .viewer, streams: true),
            Route(method: .get, template: "/api/v1/tokens", example: "/api/v1/tokens", role: .admin),
            Route(method: .post, template: "/api/v1/tokens", example: "/api/v1/tokens", role: .admin),
            Route(method: .delete, template: "/api/v1/tokens/{id}", example: "/api/v1/tokens/{expired-token-id}", role: .admin),
            Route(method: .get, template: "/api/v1/info", example: "/api/v1/info", role: .viewer),
            Route(method: .get, template: "/api/v1/whoami", example: "/api/v1/whoami", role: .viewer),
            Route(method: .get, template: "/api/v1/openapi.json", example: "/api/v1/openapi.json", role: nil),
        ]
        return routes
    }()

    /// The example path with placeholders only the harness knows filled in.
    func path(in harness: APITestHarness) -> String {
        example.replacingOccurrences(of: "{expired-token-id}", with: harness.tokenIDs["expired"]!)
    }

    var hasBody: Bool { [.post, .put, .patch].contains(method) }

    /// The role just below the route's, which must be refused.
    var roleBelow: Role? {
        switch role {
        case .operator: .viewer
        case .admin: .operator
        default: nil
        }
    }
}

extension Caller {
    init(_ role: Role) {
        switch role {
        case .viewer: self = .viewer
        case .operator: self = .operator
        case .admin: self = .admin
        }
    }
}

@Suite("Routes and the OpenAPI document")
struct RouteCatalogTests {
    @Test("every route answers with its own handler, never a server error", arguments: Route.all.filter { !$0.streams })
    func routeAnswers(_ route: Route) async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.request(
                route.method, route.path(in: api.harness), as: route.role.map(Caller.init) ?? .anonymous,
                raw: route.hasBody ? route.template.hasSuffix("tokens") ? #"{"name": "sweep", "role": "viewer"}"# : "{}" : nil)
            // Objects named in the examples exist, so a 404 here could only be the router's.
            #expect(response.status != .notFound, "\(response)")
            #expect(response.status != .methodNotAllowed, "\(response)")
            #expect(response.status.code < 500, "\(response)")
            if response.status.code >= 400 {
                response.expectErrorShape()
            } else if route.method == .delete {
                #expect(response.status == .noContent)
            } else if route.method == .post {
                #expect(response.status == .created)
            }
        }
    }

    @Test("every route enforces its role: no token is 401, the role below is 403", arguments: Route.all)
    func routeEnforcesRole(_ route: Route) async throws {
        try await APITestHarness.withAPI { api in
            let path = route.path(in: api.harness)
            let body = route.hasBody ? "{}" : nil
            let anonymous = try await api.request(route.method, path, as: .anonymous, raw: body)
            if route.role == nil {
                #expect(anonymous.status == .ok, "\(anonymous)")
            } else {
                anonymous.expectError(.unauthorized, "unauthenticated")
                #expect(anonymous.headers[.wwwAuthenticate] != nil)
            }
            if let below = route.roleBelow {
                try await api.request(route.method, path, as: Caller(below), raw: body).expectError(.forbidden, "forbidden")
            }
        }
    }

    @Test("the OpenAPI document is OpenAPI 3.1 and lists exactly the routes above")
    func openAPIDocument() async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.get("/api/v1/openapi.json", as: .anonymous)
            #expect(response.status == .ok, "\(response)")
            #expect(response.headers[.contentType] == "application/json")
            let document = try #require(response.json)
            #expect(document["openapi"] == "3.1.0")
            #expect(document["info"]?["version"] == .string(AnvilVersion.current))
            #expect(document["components"]?["securitySchemes"]?["bearer"]?["scheme"] == "bearer")
            #expect(document["components"]?["schemas"]?["Error"] != nil)

            let paths = try #require(document["paths"]?.objectValue)
            var documented: Set<String> = []
            for (path, item) in paths {
                for method in (item.objectValue ?? [:]).keys { documented.insert("\(method.uppercased()) \(path)") }
            }
            let expected = Set(Route.all.map { "\($0.method.rawValue) \($0.template)" })
            #expect(documented.subtracting(expected).isEmpty, "documented but not in the route table: \(documented.subtracting(expected).sorted())")
            #expect(expected.subtracting(documented).isEmpty, "in the route table but not documented: \(expected.subtracting(documented).sorted())")

            var operationIDs: Set<String> = []
            for route in Route.all {
                let operation = try #require(paths[route.template]?[route.method.rawValue.lowercased()], "\(route)")
                if let role = route.role {
                    #expect(operation["security"] == [["bearer": []]], "\(route)")
                    #expect(operation["x-anvil-role"] == .string(role.rawValue), "\(route)")
                } else {
                    #expect(operation["security"] == [], "\(route)")
                }
                if let id = operation["operationId"]?.stringValue {
                    #expect(operationIDs.insert(id).inserted, "duplicate operationId \(id)")
                } else {
                    Issue.record("\(route) has no operationId")
                }
                #expect(operation["summary"]?.stringValue?.isEmpty == false, "\(route)")
                #expect(operation["responses"]?["default"] != nil, "\(route)")
                let pathParameters = (operation["parameters"]?.arrayValue ?? []).filter { $0["in"] == "path" }.compactMap { $0["name"]?.stringValue }
                let placeholders = route.template.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
                #expect(pathParameters == placeholders, "\(route)")
                #expect((operation["requestBody"] != nil) == route.hasBody, "\(route)")
                if let schema = operation["requestBody"]?["content"]?.objectValue?.values.first?["schema"]?["$ref"]?.stringValue {
                    let name = String(schema.split(separator: "/").last ?? "")
                    #expect(document["components"]?["schemas"]?[name] != nil, "\(route): \(schema)")
                }
            }
            let listMachines = try #require(paths["/api/v1/machines"]?["get"]?["parameters"]?.arrayValue)
            let queries = Set(listMachines.compactMap { $0["name"]?.stringValue })
            #expect(queries.isSuperset(of: ["state", "arch", "mac", "profile", "limit", "cursor"]))
        }
    }

    @Test("the route table covers every collection")
    func routeTableCoversEveryKind() {
        let collections = Set((Route.writable + Route.readOnly).map(\.collection))
        #expect(collections == Set(ObjectKind.allCases.map(\.collection)))
        #expect(Set(Route.writable.map(\.collection)) == Set(ObjectKind.allCases.filter(\.isUserWritable).map(\.collection)))
    }
}
