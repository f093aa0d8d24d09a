import Foundation
import ProvisioningModel
import Testing

@Suite("API tokens")
struct APITokenTests {
    @Test("the hash is 64 lowercase hex digits")
    func hashShape() {
        let hash = APIToken.hash(secret: APIToken.generateSecret())
        #expect(hash.count == 64)
        #expect(hash.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) })
    }

    @Test("the hash is SHA-256 and stable")
    func hashValue() {
        #expect(APIToken.hash(secret: "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(APIToken.hash(secret: "anvil_same") == APIToken.hash(secret: "anvil_same"))
        #expect(APIToken.hash(secret: "anvil_a") != APIToken.hash(secret: "anvil_b"))
    }

    @Test("generated secrets start with anvil_ and carry 43 base64url characters")
    func secretShape() {
        let secret = APIToken.generateSecret()
        #expect(secret.hasPrefix("anvil_"))
        let body = secret.dropFirst("anvil_".count)
        #expect(body.count == 43)
        #expect(body.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
    }

    @Test("generated secrets are distinct")
    func secretsDistinct() {
        let secrets = (0..<200).map { _ in APIToken.generateSecret() }
        #expect(Set(secrets).count == secrets.count)
    }

    @Test("roles are ordered viewer < operator < admin")
    func roleOrdering() {
        #expect(Role.viewer < Role.operator)
        #expect(Role.operator < Role.admin)
        #expect(Role.viewer < Role.admin)
        #expect(!(Role.admin < Role.admin))
        #expect([Role.admin, .viewer, .operator].sorted() == [.viewer, .operator, .admin])
    }

    @Test("expiry", arguments: [
        (nil as TimeInterval?, false),
        (-60, true),
        (0, true),
        (60, false),
    ])
    func expiry(_ offset: TimeInterval?, _ expired: Bool) {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let token = APIToken(name: "t", role: .viewer, createdAt: now.addingTimeInterval(-3600), expiresAt: offset.map(now.addingTimeInterval))
        #expect(token.isExpired(at: now) == expired)
    }
}
