import HTTPTypes
import Hummingbird
import ProvisioningModel

/// One documented API operation.
public struct APIOperation: Sendable, Hashable {
    public var method: HTTPRequest.Method
    /// Full path in OpenAPI form, e.g. `/api/v1/machines/{id}`.
    public var path: String
    public var summary: String
    /// Minimum role; `nil` for public operations.
    public var role: Role?
    public var tag: String
    /// Name of the component schema of the request body, if any.
    public var requestSchema: String?
    /// Query parameters the operation understands.
    public var queryParameters: [String]
}

/// Registers routes and remembers them, so the OpenAPI document is generated from exactly the routes
/// the server has and cannot drift from them.
final class RouteCatalog: @unchecked Sendable {
    // Only mutated while the router is being built, before the server starts.
    private(set) var operations: [APIOperation] = []
    private let authenticated: RouterGroup<AnvilRequestContext>
    private let publicRoutes: Router<AnvilRequestContext>
    private let prefix: String

    init(router: Router<AnvilRequestContext>, prefix: String, authenticated: RouterGroup<AnvilRequestContext>) {
        self.publicRoutes = router
        self.prefix = prefix
        self.authenticated = authenticated
    }

    /// Adds an operation under the API prefix. `role` nil means no token needed.
    func add(
        _ method: HTTPRequest.Method, _ path: String, role: Role?, tag: String, summary: String,
        requestSchema: String? = nil, query: [String] = [],
        handler: @escaping @Sendable (Request, AnvilRequestContext) async throws -> Response
    ) {
        let fullPath = path.isEmpty ? prefix : "\(prefix)/\(path)"
        operations.append(
            APIOperation(
                method: method, path: fullPath, summary: summary, role: role, tag: tag, requestSchema: requestSchema,
                queryParameters: query))
        if let role {
            authenticated.on(RouterPath(path), method: method) { request, context in
                try context.require(role)
                return try await handler(request, context)
            }
        } else {
            publicRoutes.on(RouterPath(fullPath), method: method, use: handler)
        }
    }
}
