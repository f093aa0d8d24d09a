import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ProvisioningModel

/// What the admin API needs from the appliance around it.
public struct AdminAPIEnvironment: Sendable {
    public var store: any InventoryStore
    public var startedAt: Date
    /// Prometheus text exposition of the process's metrics.
    public var metricsText: @Sendable () -> String
    /// Addresses the planes actually listen on, reported by /info.
    public var listeners: @Sendable () async -> [String: String]
    /// The DHCP server's latest boot answers, shown per machine.
    public var bootDecisions: BootDecisionLog
    /// The boot plane's renderer, for previews that are exactly what machines get.
    public var machineFiles: MachineFileRenderer
    /// BMC records, power commands and sensors; without it those routes do not exist.
    public var power: PowerOperations?

    public init(
        store: any InventoryStore, machineFiles: MachineFileRenderer, startedAt: Date = Date(),
        metricsText: @escaping @Sendable () -> String = { "" },
        listeners: @escaping @Sendable () async -> [String: String] = { [:] }, bootDecisions: BootDecisionLog = BootDecisionLog(),
        power: PowerOperations? = nil
    ) {
        self.bootDecisions = bootDecisions
        self.machineFiles = machineFiles
        self.power = power
        self.store = store
        self.startedAt = startedAt
        self.metricsText = metricsText
        self.listeners = listeners
    }
}

/// Builds the admin plane's router: the REST API under `/api/v1`, `/metrics` and `/healthz`.
public enum AdminAPI {
    public static let prefix = "/api/v1"

    public static func makeRouter(_ environment: AdminAPIEnvironment) -> Router<AnvilRequestContext> {
        let router = Router(context: AnvilRequestContext.self)
        router.add(middleware: ErrorShapingMiddleware())
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: LogRequestsMiddleware(.debug))
        let authenticated = router.group(RouterPath(prefix)).add(middleware: TokenAuthMiddleware(store: environment.store))
        let catalog = RouteCatalog(router: router, prefix: prefix, authenticated: authenticated)
        let store = environment.store

        ObjectRoutes<Machine>(store: store).register(in: catalog)
        ObjectRoutes<Subnet>(store: store).register(in: catalog)
        ObjectRoutes<Reservation>(store: store).register(in: catalog)
        ObjectRoutes<BootEnv>(store: store).register(in: catalog)
        ObjectRoutes<Param>(store: store).register(in: catalog)
        ObjectRoutes<Profile>(store: store).register(in: catalog)
        ObjectRoutes<TaskDefinition>(store: store).register(in: catalog)
        ObjectRoutes<Stage>(store: store).register(in: catalog)
        ObjectRoutes<Workflow>(store: store).register(in: catalog)
        ObjectRoutes<Job>(store: store).register(in: catalog)
        ObjectRoutes<Lease>(store: store).register(in: catalog)

        catalog.add(.get, "params/{key}/resolve", role: .viewer, tag: "params",
            summary: "Resolve a param for a machine through the attribute chain", query: ["machine", "stage"]) { request, context in
            try await ParamResolution(store: store).resolve(request, context)
        }
        BootDecisionRoutes(store: store, decisions: environment.bootDecisions).register(in: catalog)
        MachineHistoryRoutes(store: store).register(in: catalog)
        if let power = environment.power { PowerRoutes(store: store, operations: power).register(in: catalog) }
        MachineRenderRoutes(files: environment.machineFiles, listeners: environment.listeners).register(in: catalog)
        EventRoutes(store: store).register(in: catalog)
        TokenRoutes(store: store).register(in: catalog)
        catalog.add(.get, "info", role: .viewer, tag: "appliance", summary: "Version, uptime and object counts") { _, _ in
            try await info(environment)
        }
        catalog.add(.get, "whoami", role: .viewer, tag: "appliance", summary: "The calling token") { _, context in
            try JSONResponse.make(context.token)
        }
        catalog.add(.get, "openapi.json", role: nil, tag: "appliance", summary: "This document") { _, _ in
            try JSONResponse.make(OpenAPIDocument.make(operations: catalog.operations, version: AnvilVersion.current))
        }
        addOperationalRoutes(to: router, metricsText: environment.metricsText)
        return router
    }

    /// `/healthz` and `/metrics`: unauthenticated, for load balancers and Prometheus.
    public static func addOperationalRoutes<Context: RequestContext>(to router: Router<Context>, metricsText: @escaping @Sendable () -> String) {
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: metricsText())))
        }
    }

    struct Info: Encodable {
        var name = "anvil"
        var version: String
        var startedAt: Date
        var uptimeSeconds: Int
        var counts: [String: Int]
        var latestEventCursor: Int64
        var listeners: [String: String]
    }

    private static func info(_ environment: AdminAPIEnvironment) async throws -> Response {
        var counts: [String: Int] = [:]
        for kind in ObjectKind.allCases { counts[kind.collection] = try await environment.store.count(kind) }
        return try JSONResponse.make(
            Info(
                version: AnvilVersion.current, startedAt: environment.startedAt,
                uptimeSeconds: Int(Date().timeIntervalSince(environment.startedAt)), counts: counts,
                latestEventCursor: try await environment.store.latestEventCursor(), listeners: await environment.listeners()))
    }
}

/// `GET /params/{name}/resolve?machine=…`: the value the attribute chain gives, and where it came from.
struct ParamResolution {
    let store: any InventoryStore

    struct Answer: Encodable {
        struct Source: Encodable {
            var layer: String
            var name: String?
        }
        var param: String
        var machine: String
        var value: JSONValue?
        var source: Source
        var defined: Bool
    }

    func resolve(_ request: Request, _ context: AnvilRequestContext) async throws -> Response {
        let name = try context.parameters.require("key")
        guard let machineRef = request.uri.queryParameters["machine"].map(String.init), !machineRef.isEmpty else {
            throw APIError.badRequest("missing_query", "say which machine: ?machine=<id or name>", field: "machine")
        }
        let machine = try await lookUpMachine(machineRef, in: store, field: "machine")
        let definition = try? await store.fetch(Param.self, key: name).object
        var profiles: [Profile] = []
        for profileName in machine.object.profiles {
            if let profile = try? await store.fetch(Profile.self, key: profileName).object { profiles.append(profile) }
        }
        var stageProfile: Profile?
        if let stageName = request.uri.queryParameters["stage"].map(String.init) {
            let stage = try await store.fetch(Stage.self, key: stageName).object
            if let profileName = stage.profile { stageProfile = try await store.fetch(Profile.self, key: profileName).object }
        }
        let global = try? await store.fetch(Profile.self, key: Profile.globalName).object
        let chain = AttributeChain(machine: machine.object, profiles: profiles, stageProfile: stageProfile, global: global)
        let resolved = chain.resolve(name, definition: definition)
        if definition == nil && resolved.value == nil {
            throw APIError(.notFound, code: "not_found", message: "no param '\(name)' is defined or set for this machine", field: "name")
        }
        let source: Answer.Source =
            switch resolved.source {
            case .machine: .init(layer: "machine", name: machine.object.name)
            case .profile(let profile): .init(layer: "profile", name: profile)
            case .stageProfile(let profile): .init(layer: "stage-profile", name: profile)
            case .global: .init(layer: "global", name: Profile.globalName)
            case .paramDefault: .init(layer: "default", name: name)
            case .unset: .init(layer: "unset")
            }
        return try JSONResponse.make(
            Answer(param: name, machine: machine.object.key, value: resolved.value, source: source, defined: definition != nil))
    }
}
