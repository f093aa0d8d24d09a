import ApplianceTesting
import Foundation
import HTTPTypes
import ProvisioningModel
import SQLiteInventory
import Testing

@Suite("Authentication, roles and tokens")
struct AuthenticationTests {
    @Test("401 answers carry a WWW-Authenticate challenge", arguments: [
        (Caller.anonymous, "unauthenticated"), (.secret("anvil_wrong"), "invalid_token"), (.expired, "token_expired"),
    ])
    func unauthorized(caller: Caller, code: String) async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.get("/api/v1/machines", as: caller)
            response.expectError(.unauthorized, code)
            #expect(response.headers[.wwwAuthenticate] == "Bearer realm=\"anvil\"")
        }
    }

    @Test("whoami names the calling token and its role", arguments: [Caller.viewer, .operator, .admin])
    func whoami(caller: Caller) async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.get("/api/v1/whoami", as: caller)
            #expect(response.status == .ok, "\(response)")
            #expect(response.json?["name"] == .string("\(caller)"))
            #expect(response.json?["role"] == .string("\(caller)"))
            #expect(response.json?["id"] == .string(api.harness.tokenIDs["\(caller)"]!))
        }
    }

    @Test("the bearer scheme is matched case-insensitively")
    func bearerSchemeCase() async throws {
        try await APITestHarness.withAPI { api in
            let secret = try #require(api.harness.secrets["viewer"])
            for scheme in ["bearer", "BEARER", "Bearer"] {
                let response = try await api.request(.get, "/api/v1/whoami", as: .anonymous, headers: [.authorization: "\(scheme) \(secret)"])
                #expect(response.status == .ok, "\(scheme): \(response)")
            }
        }
    }

    /// Each role may do what the roles below it may, and no more.
    static let roleMatrix: [(caller: Caller, readAllowed: Bool, writeAllowed: Bool, tokensAllowed: Bool)] = [
        (.viewer, true, false, false),
        (.operator, true, true, false),
        (.admin, true, true, true),
    ]

    @Test("roles: viewer reads, operator also writes, admin also manages tokens", arguments: roleMatrix)
    func roles(caller: Caller, readAllowed: Bool, writeAllowed: Bool, tokensAllowed: Bool) async throws {
        try await APITestHarness.withAPI { api in
            let read = try await api.get("/api/v1/machines", as: caller)
            #expect((read.status == .ok) == readAllowed, "\(read)")
            let events = try await api.get("/api/v1/events", as: caller)
            #expect((events.status == .ok) == readAllowed, "\(events)")

            let write = try await api.post("/api/v1/bootenvs", ["name": .string("by-\(caller)")], as: caller)
            if writeAllowed {
                #expect(write.status == .created, "\(write)")
            } else {
                write.expectError(.forbidden, "forbidden")
                try await api.get("/api/v1/bootenvs/by-\(caller)").expectError(.notFound, "not_found")
            }

            let tokens = try await api.get("/api/v1/tokens", as: caller)
            if tokensAllowed {
                #expect(tokens.status == .ok, "\(tokens)")
            } else {
                tokens.expectError(.forbidden, "forbidden")
                #expect(tokens.headers[.wwwAuthenticate] == nil)
            }
        }
    }

    @Test("token lifecycle: created with its secret once, listed without secrets, usable, revoked")
    func tokenLifecycle() async throws {
        try await APITestHarness.withAPI { api in
            let created = try await api.post("/api/v1/tokens", ["name": "ci", "role": "operator", "expiresInSeconds": 3600], as: .admin)
            #expect(created.status == .created, "\(created)")
            let secret = try #require(created.json?["secret"]?.stringValue)
            #expect(secret.hasPrefix("anvil_"))
            let id = try #require(created.json?["token"]?["id"]?.stringValue)
            #expect(created.json?["token"]?["name"] == "ci")
            #expect(created.json?["token"]?["role"] == "operator")
            #expect(created.json?["token"]?["expiresAt"]?.stringValue != nil)

            // The list shows every token, never a secret or a hash.
            let listed = try await api.get("/api/v1/tokens", as: .admin)
            #expect(listed.status == .ok, "\(listed)")
            #expect(Set(listed.items.compactMap { $0["name"]?.stringValue }) == ["admin", "ci", "expired", "operator", "viewer"])
            for item in listed.items {
                let fields = Set((item.objectValue ?? [:]).keys)
                #expect(fields.isSubset(of: ["id", "name", "role", "createdAt", "expiresAt"]), "\(item)")
            }
            #expect(!listed.text.contains(secret))
            #expect(!listed.text.contains(APIToken.hash(secret: secret)))
            for known in api.harness.secrets.values {
                #expect(!listed.text.contains(known))
                #expect(!listed.text.contains(APIToken.hash(secret: known)))
            }

            // The new token works, with its role.
            let whoami = try await api.get("/api/v1/whoami", as: .secret(secret))
            #expect(whoami.status == .ok, "\(whoami)")
            #expect(whoami.json?["name"] == "ci")
            #expect(try await api.post("/api/v1/bootenvs", ["name": "from-ci"], as: .secret(secret)).status == .created)
            try await api.get("/api/v1/tokens", as: .secret(secret)).expectError(.forbidden, "forbidden")
            let event = try await api.get("/api/v1/events?after=0&limit=1000").json?["events"]?.arrayValue?.last
            #expect(event?["actor"] == "token:ci")

            // Revoked: 204, then the secret no longer authenticates.
            let revoked = try await api.delete("/api/v1/tokens/\(id)", as: .admin)
            #expect(revoked.status == .noContent, "\(revoked)")
            let after = try await api.get("/api/v1/whoami", as: .secret(secret))
            after.expectError(.unauthorized, "invalid_token")
            #expect(after.headers[.wwwAuthenticate] != nil)
            #expect(!(try await api.get("/api/v1/tokens", as: .admin).items.contains { $0["id"] == .string(id) }))
            try await api.delete("/api/v1/tokens/\(id)", as: .admin).expectError(.notFound, "not_found")
        }
    }

    @Test("a token created without expiry never expires; tokens of every role can be created", arguments: Role.allCases)
    func createTokenOfRole(role: Role) async throws {
        try await APITestHarness.withAPI { api in
            let created = try await api.post("/api/v1/tokens", ["name": .string("new-\(role.rawValue)"), "role": .string(role.rawValue)], as: .admin)
            #expect(created.status == .created, "\(created)")
            #expect(created.json?["token"]?["expiresAt"] == nil)
            let secret = try #require(created.json?["secret"]?.stringValue)
            #expect(try await api.get("/api/v1/whoami", as: .secret(secret)).json?["role"] == .string(role.rawValue))
        }
    }

    /// Regression: an expiry past year 9999 was stored as a date SQLite text dates cannot hold, and
    /// the next `GET /tokens` crashed the server.
    @Test("a token lifetime outside 1 second to 100 years is refused, and tokens stay listable",
        arguments: [Int64(0), -60, 3_153_600_001, 1_000_000_000_000, .max])
    func tokenLifetimeOutOfRange(seconds: Int64) async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.post(
                "/api/v1/tokens", ["name": "short-lived", "role": "viewer", "expiresInSeconds": .integer(seconds)], as: .admin)
            response.expectError(.unprocessableContent, "invalid", field: "expiresInSeconds")
            let listed = try await api.get("/api/v1/tokens", as: .admin)
            #expect(listed.status == .ok, "\(listed)")
            #expect(!listed.items.contains { $0["name"] == "short-lived" })
        }
    }

    @Test("a token that lives 100 years is stored, listed and works")
    func tokenLifetimeAtLimit() async throws {
        try await APITestHarness.withAPI { api in
            let created = try await api.post(
                "/api/v1/tokens", ["name": "long-lived", "role": "viewer", "expiresInSeconds": 3_153_600_000], as: .admin)
            #expect(created.status == .created, "\(created)")
            let secret = try #require(created.json?["secret"]?.stringValue)
            let listed = try await api.get("/api/v1/tokens", as: .admin)
            #expect(listed.status == .ok, "\(listed)")
            #expect(listed.items.contains { $0["name"] == "long-lived" && $0["expiresAt"]?.stringValue != nil })
            #expect(try await api.get("/api/v1/whoami", as: .secret(secret)).json?["name"] == "long-lived")
        }
    }

    @Test("an admin can revoke the token of another admin, including an expired one")
    func revokeExpired() async throws {
        try await APITestHarness.withAPI { api in
            let id = try #require(api.harness.tokenIDs["expired"])
            #expect(try await api.delete("/api/v1/tokens/\(id)", as: .admin).status == .noContent)
            try await api.get("/api/v1/whoami", as: .expired).expectError(.unauthorized, "invalid_token")
        }
    }

    @Test("public routes need no token and ignore a bad one", arguments: [Caller.anonymous, .secret("anvil_wrong"), .expired])
    func publicRoutes(caller: Caller) async throws {
        try await APITestHarness.withAPI { api in
            let health = try await api.get("/healthz", as: caller)
            #expect(health.status == .ok)
            #expect(health.text == "ok\n")

            let metrics = try await api.get("/metrics", as: caller)
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(metrics.text.contains("anvil_test_metric 1"))

            let openAPI = try await api.get("/api/v1/openapi.json", as: caller)
            #expect(openAPI.status == .ok)
            #expect(openAPI.json?["openapi"] == "3.1.0")
        }
    }

    @Test("info reports the version, counts per collection and the latest event cursor")
    func info() async throws {
        try await APITestHarness.withAPI { api in
            let info = try await api.get("/api/v1/info")
            #expect(info.status == .ok, "\(info)")
            #expect(info.json?["name"] == "anvil")
            #expect(info.json?["version"] == .string(AnvilVersion.current))
            #expect(info.json?["counts"]?["machines"] == 1)
            #expect(info.json?["counts"]?["bootenvs"] == 3)
            #expect(info.json?["counts"]?["leases"] == 1)
            let counted = Set((info.json?["counts"]?.objectValue ?? [:]).keys)
            #expect(counted == Set(ObjectKind.allCases.map(\.collection)))
            let latest = try await api.store.latestEventCursor()
            #expect(info.json?["latestEventCursor"] == .integer(latest))
            #expect(info.json?["uptimeSeconds"]?.intValue.map { $0 >= 0 } == true)
        }
    }
}
