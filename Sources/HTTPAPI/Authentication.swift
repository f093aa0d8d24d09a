import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ProvisioningModel

/// The request context of the admin API: who is calling, once the bearer token checked out.
public struct AnvilRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var token: APIToken?

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// 403 unless the caller's role is at least `role`.
    func require(_ role: Role) throws {
        guard let token else {
            throw APIError(.unauthorized, code: "unauthenticated", message: "a bearer token is required")
        }
        guard token.role >= role else {
            throw APIError(
                .forbidden, code: "forbidden",
                message: "this needs the \(role.rawValue) role; token '\(token.name)' has \(token.role.rawValue)")
        }
    }
}

/// Checks `Authorization: Bearer <secret>` against the stored token hashes. 401 for a missing, unknown
/// or expired token (with `WWW-Authenticate`), so clients know to re-authenticate; roles give 403 later.
struct TokenAuthMiddleware: RouterMiddleware {
    let store: any InventoryStore

    func handle(
        _ request: Request, context: AnvilRequestContext, next: (Request, AnvilRequestContext) async throws -> Response
    ) async throws -> Response {
        let challenge: HTTPFields = [.wwwAuthenticate: "Bearer realm=\"anvil\""]
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw APIError(.unauthorized, code: "unauthenticated", message: "a bearer token is required", headers: challenge)
        }
        let secret = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        guard let token = try await store.token(secretHash: APIToken.hash(secret: secret)) else {
            throw APIError(.unauthorized, code: "invalid_token", message: "the bearer token is not valid", headers: challenge)
        }
        guard !token.isExpired(at: Date()) else {
            throw APIError(.unauthorized, code: "token_expired", message: "token '\(token.name)' has expired", headers: challenge)
        }
        var context = context
        context.token = token
        context.logger[metadataKey: "token"] = "\(token.name)"
        return try await next(request, context)
    }
}
