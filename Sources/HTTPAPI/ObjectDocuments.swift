import Foundation
import Hummingbird
import NIOCore
import ProvisioningModel

/// An object on the wire: its own fields plus `meta` (revision, origin, timestamps).
struct ObjectDocument<Object: InventoryObject>: Encodable {
    var stored: Stored<Object>

    func encode(to encoder: any Encoder) throws {
        try stored.object.encode(to: encoder)
        var container = encoder.container(keyedBy: MetaKey.self)
        try container.encode(stored.meta, forKey: .meta)
    }

    private enum MetaKey: String, CodingKey { case meta }
}

struct ObjectList<Object: InventoryObject>: Encodable {
    var items: [ObjectDocument<Object>]
    var nextCursor: String?
}

/// Reading request bodies: malformed JSON is a 400; well-formed JSON that does not describe a valid
/// object is a 422 naming the field.
enum RequestBody {
    static let sizeLimit = 4 << 20

    static func json(_ request: Request) async throws -> JSONValue {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: sizeLimit)
        } catch {
            throw APIError(.contentTooLarge, code: "body_too_large", message: "request bodies are limited to \(sizeLimit >> 20) MiB")
        }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("empty_body", "the request needs a JSON body") }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError.badRequest("malformed_json", "the body is not valid JSON: \(describe(error))")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, knownFields: Set<String>? = nil) throws -> T {
        guard case .object(let members) = value else {
            throw APIError(.unprocessableContent, code: "invalid", message: "the body must be a JSON object")
        }
        if let knownFields {
            let unknown = members.keys.filter { !knownFields.contains($0) && $0 != "meta" }.sorted()
            if let first = unknown.first {
                throw APIError(
                    .unprocessableContent, code: "unknown_field",
                    message: "unknown field '\(first)' (known fields: \(knownFields.sorted().joined(separator: ", ")))",
                    field: first, problems: unknown.map { ValidationProblem(field: $0, message: "unknown field") })
            }
        }
        do {
            let data = try JSONResponse.encoder.encode(value)
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(T.self, from: data)
        } catch let error as DecodingError {
            let (field, message) = explain(error)
            throw APIError(
                .unprocessableContent, code: "invalid", message: "\(field): \(message)", field: field,
                problems: [ValidationProblem(field: field, message: message)])
        }
    }

    /// A DecodingError as (JSON path, reason).
    static func explain(_ error: DecodingError) -> (String, String) {
        func path(_ keys: [any CodingKey]) -> String {
            keys.reduce(into: "") { result, key in
                if let index = key.intValue {
                    result += "[\(index)]"
                } else {
                    result += result.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            return (path(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return (path(context.codingPath), "must be \(jsonType(type))")
        case .valueNotFound(let type, let context):
            return (path(context.codingPath), "must be \(jsonType(type)), not null")
        case .dataCorrupted(let context):
            return (path(context.codingPath), context.debugDescription)
        @unknown default:
            return ("", "\(error)")
        }
    }

    private static func jsonType(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "a boolean"
        default: String(describing: type).hasPrefix("Array") ? "an array" : String(describing: type).hasPrefix("Dictionary") ? "an object" : "a \(type)"
        }
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            return (context.underlyingError.map { "\($0)" } ?? context.debugDescription)
        }
        return "\(error)"
    }
}
