import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ProvisioningModel
import ServiceLifecycle

/// The durable event log, read by cursor (`GET /events?after=N`) or followed live as server-sent events.
struct EventRoutes {
    let store: any InventoryStore
    static let heartbeat = Duration.seconds(10)

    struct EventPage: Encodable {
        var events: [InventoryEvent]
        var nextCursor: Int64
    }

    func register(in catalog: RouteCatalog) {
        catalog.add(.get, "events", role: .viewer, tag: "events", summary: "Events after a cursor", query: ["after", "limit"]) { request, _ in
            let after = try cursor(request)
            let limit = try limit(request)
            let events = try await store.events(after: after ?? 0, limit: limit)
            return try JSONResponse.make(EventPage(events: events, nextCursor: events.last?.cursor ?? after ?? 0))
        }
        catalog.add(.get, "events/stream", role: .viewer, tag: "events",
            summary: "Follow events live (text/event-stream); resumes after `after` or Last-Event-ID", query: ["after"]) { request, _ in
            try await stream(request)
        }
    }

    private func stream(_ request: Request) async throws -> Response {
        let lastEventID = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int64($0) }
        let requested = try lastEventID ?? cursor(request)
        let start: Int64
        if let requested { start = requested } else { start = try await store.latestEventCursor() }
        let store = self.store
        let body = ResponseBody { writer in
            var cursor = start
            try await writer.write(ByteBuffer(string: ": anvil event stream from cursor \(start)\n\n"))
            try await withGracefulShutdownHandler {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    let events = try await store.events(after: cursor, limit: 500)
                    for event in events {
                        let data = String(decoding: try JSONResponse.encoder.encode(event), as: UTF8.self)
                        try await writer.write(
                            ByteBuffer(string: "id: \(event.cursor)\nevent: \(event.kind.rawValue).\(event.action.rawValue)\ndata: \(data)\n\n"))
                        cursor = event.cursor
                    }
                    if events.count == 500 { continue }
                    await store.eventSignal.wait(beyond: cursor, timeout: Self.heartbeat)
                    if try await store.latestEventCursor() <= cursor {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    }
                }
            } onGracefulShutdown: {
                store.eventSignal.wakeAll()
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    private func cursor(_ request: Request) throws -> Int64? {
        guard let raw = request.uri.queryParameters["after"] else { return nil }
        guard let value = Int64(raw), value >= 0 else {
            throw APIError.badRequest("invalid_query", "after must be an event cursor (a whole number ≥ 0)", field: "after")
        }
        return value
    }

    private func limit(_ request: Request) throws -> Int {
        guard let raw = request.uri.queryParameters["limit"] else { return 100 }
        guard let value = Int(raw), (1...1000).contains(value) else {
            throw APIError.badRequest("invalid_query", "limit must be a whole number from 1 to 1000", field: "limit")
        }
        return value
    }
}

/// Admin tokens: create (the secret is shown once), list, revoke.
struct TokenRoutes {
    let store: any InventoryStore

    /// The longest lifetime a token can be given. Without a bound, an expiry beyond year 9999 was stored
    /// as a date the store cannot read back, and listing tokens (or using that token) crashed the server.
    static let maximumLifetimeSeconds = 100 * 365 * 24 * 60 * 60

    struct TokenRequest: Decodable {
        var name: String
        var role: Role
        var expiresInSeconds: Int?
    }

    struct CreatedToken: Encodable {
        var token: APIToken
        /// Shown once; only its hash is stored.
        var secret: String
    }

    func register(in catalog: RouteCatalog) {
        catalog.add(.get, "tokens", role: .admin, tag: "tokens", summary: "List API tokens (never their secrets)") { _, _ in
            try JSONResponse.make(["items": try await store.tokens()])
        }
        catalog.add(.post, "tokens", role: .admin, tag: "tokens", summary: "Create an API token", requestSchema: "TokenRequest") {
            request, _ in
            let body = try RequestBody.decode(
                TokenRequest.self, from: try await RequestBody.json(request), knownFields: ["name", "role", "expiresInSeconds"])
            var report = ValidationReport()
            report.checkName(body.name)
            if let seconds = body.expiresInSeconds {
                report.check((1...Self.maximumLifetimeSeconds).contains(seconds), "expiresInSeconds",
                    "must be from 1 to \(Self.maximumLifetimeSeconds) (100 years)")
            }
            if !report.problems.isEmpty { throw InventoryError.invalid(report.problems) }
            let now = Date()
            let token = APIToken(
                name: body.name, role: body.role, createdAt: now,
                expiresAt: body.expiresInSeconds.map { now.addingTimeInterval(TimeInterval($0)) })
            let secret = APIToken.generateSecret()
            try await store.createToken(token, secretHash: APIToken.hash(secret: secret))
            return try JSONResponse.make(CreatedToken(token: token, secret: secret), status: .created)
        }
        catalog.add(.delete, "tokens/{id}", role: .admin, tag: "tokens", summary: "Revoke an API token") { _, context in
            let raw = try context.parameters.require("id")
            guard let id = ObjectID(raw) else { throw APIError(.notFound, code: "not_found", message: "no token '\(raw)'") }
            try await store.deleteToken(id: id)
            return Response(status: .noContent)
        }
    }
}
