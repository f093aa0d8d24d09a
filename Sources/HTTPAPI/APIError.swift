import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ProvisioningModel

/// The one error shape of the API: `{"error": {"code", "message", "field", "problems"}}`.
/// `code` is stable (clients switch on it); `message` is for people; `field` names the input at fault.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var field: String?
    public var problems: [ValidationProblem]
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status, code: String, message: String, field: String? = nil,
        problems: [ValidationProblem] = [], headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.problems = problems
        self.headers = headers
    }

    struct Body: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
            var field: String?
            var problems: [ValidationProblem]?
        }
        var error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(error: .init(code: code, message: message, field: field, problems: problems.isEmpty ? nil : problems))
        var response = try JSONResponse.make(body, status: status)
        response.headers.append(contentsOf: headers)
        return response
    }
}

extension APIError {
    /// How inventory refusals look on the wire. Only `.storage` is the server's fault.
    init(_ error: InventoryError) {
        switch error {
        case .notFound:
            self.init(.notFound, code: "not_found", message: error.message)
        case .alreadyExists(let field, _):
            self.init(.conflict, code: "already_exists", message: error.message, field: field)
        case .revisionMismatch:
            self.init(.preconditionFailed, code: "revision_mismatch", message: error.message, field: "If-Match")
        case .readOnlyContent:
            self.init(.conflict, code: "read_only_content", message: error.message)
        case .inUse:
            self.init(.conflict, code: "in_use", message: error.message)
        case .invalid(let problems):
            self.init(
                .unprocessableContent, code: "invalid", message: error.message, field: problems.first?.field,
                problems: problems)
        case .storage:
            self.init(.internalServerError, code: "storage_error", message: "the inventory store failed; see the server log")
        }
    }

    static func badRequest(_ code: String, _ message: String, field: String? = nil) -> APIError {
        APIError(.badRequest, code: code, message: message, field: field)
    }
}

/// Turns every error into the JSON error shape, so clients never see HTML, plain text or a bare status.
struct ErrorShapingMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as InventoryError {
            if case .storage(let cause) = error { context.logger.error("inventory store failed", metadata: ["cause": "\(cause)"]) }
            throw APIError(error)
        } catch let error as HTTPError {
            throw APIError(error.status, code: Self.code(for: error.status), message: error.body ?? error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError(.internalServerError, code: "internal_error", message: "internal error; see the server log")
        }
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .contentTooLarge: "body_too_large"
        case .badRequest: "bad_request"
        case .unauthorized: "unauthenticated"
        default: status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_")
        }
    }
}

/// Rendered files and scripts: the text as it is, for firmware, installers and `anvil render`.
enum TextResponse {
    static func make(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

enum JSONResponse {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var data = try encoder.encode(value)
        data.append(UInt8(ascii: "\n"))
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
