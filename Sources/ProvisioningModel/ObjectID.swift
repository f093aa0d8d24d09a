import Foundation

/// A UUID identity (machines, jobs, tokens), written in lowercase everywhere: URLs, JSON, the database.
public struct ObjectID: Hashable, Sendable, Comparable {
    public let uuid: UUID

    public init(_ uuid: UUID = UUID()) { self.uuid = uuid }

    public init?(_ text: some StringProtocol) {
        guard let uuid = UUID(uuidString: String(text)) else { return nil }
        self.uuid = uuid
    }

    public static func < (lhs: ObjectID, rhs: ObjectID) -> Bool { lhs.description < rhs.description }
}

extension ObjectID: CustomStringConvertible {
    public var description: String { uuid.uuidString.lowercased() }
}

extension ObjectID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = ObjectID(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a UUID")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
