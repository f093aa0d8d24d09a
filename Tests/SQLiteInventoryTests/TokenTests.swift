import Foundation
import ProvisioningModel
import SQLiteInventory
import Testing

private func token(_ name: String, role: Role = .operator, expiresAt: Date? = nil) -> APIToken {
    // Whole seconds, so the stored timestamps compare equal after the round trip.
    APIToken(name: name, role: role, createdAt: Date(timeIntervalSince1970: 1_700_000_000), expiresAt: expiresAt)
}

@Suite("API token storage")
struct TokenStorageTests {
    @Test("a created token is found by its secret hash")
    func createAndFind() async throws {
        try await withStore(seeded: false) { store, _ in
            let secret = APIToken.generateSecret()
            let created = token("ci", role: .admin, expiresAt: Date(timeIntervalSince1970: 1_800_000_000))
            try await store.createToken(created, secretHash: APIToken.hash(secret: secret))
            #expect(try await store.token(secretHash: APIToken.hash(secret: secret)) == created)
            #expect(try await store.token(secretHash: APIToken.hash(secret: "anvil_wrong")) == nil)
        }
    }

    @Test("tokens() lists every token by name")
    func listTokens() async throws {
        try await withStore(seeded: false) { store, _ in
            let zed = token("zed", role: .viewer)
            let amy = token("amy")
            try await store.createToken(zed, secretHash: APIToken.hash(secret: "anvil_1"))
            try await store.createToken(amy, secretHash: APIToken.hash(secret: "anvil_2"))
            #expect(try await store.tokens() == [amy, zed])
        }
    }

    @Test("a duplicate token name is alreadyExists on 'name'")
    func duplicateName() async throws {
        try await withStore(seeded: false) { store, _ in
            try await store.createToken(token("ci"), secretHash: APIToken.hash(secret: "anvil_1"))
            let error = await inventoryError { try await store.createToken(token("ci"), secretHash: APIToken.hash(secret: "anvil_2")) }
            #expect(error?.alreadyExistsField == "name")
            #expect(try await store.tokens().count == 1)
        }
    }

    @Test("deleteToken removes the token so its secret no longer authenticates")
    func deleteToken() async throws {
        try await withStore(seeded: false) { store, _ in
            let ci = token("ci")
            try await store.createToken(ci, secretHash: APIToken.hash(secret: "anvil_1"))
            try await store.deleteToken(id: ci.id)
            #expect(try await store.tokens().isEmpty)
            #expect(try await store.token(secretHash: APIToken.hash(secret: "anvil_1")) == nil)
        }
    }

    @Test("deleting a missing token is notFound")
    func deleteMissing() async throws {
        try await withStore(seeded: false) { store, _ in
            let id = ObjectID()
            let error = await inventoryError { try await store.deleteToken(id: id) }
            #expect(error == .notFound(what: "token", key: id.description))
        }
    }
}
