import Crypto
import Foundation

/// What an admin-plane caller may do. Each role includes the ones below it.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    /// Reads inventory, events and metrics.
    case viewer
    /// Also creates, changes and deletes inventory objects, and runs power and workflow actions.
    case `operator`
    /// Also manages API tokens.
    case admin

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }
}

/// An admin API token. Only a hash of the secret is ever stored.
public struct APIToken: Codable, Sendable, Hashable {
    public var id: ObjectID
    public var name: String
    public var role: Role
    public var createdAt: Date
    public var expiresAt: Date?

    public init(id: ObjectID = ObjectID(), name: String, role: Role, createdAt: Date, expiresAt: Date? = nil) {
        self.id = id
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    public func isExpired(at now: Date) -> Bool { expiresAt.map { $0 <= now } ?? false }

    /// Secrets look like `anvil_<43 base64url characters>` (256 random bits), so they are easy to spot in a leak scan.
    public static func generateSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "anvil_" + Data(bytes).base64URLEncodedString()
    }

    /// SHA-256 of the secret. The secret has 256 bits of entropy, so a fast hash is enough (no password stretching).
    public static func hash(secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
