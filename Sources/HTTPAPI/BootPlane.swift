import BootEnvRendering
import Hummingbird
import Logging
import ProvisioningModel

/// What the boot plane serves from: the inventory, the templates, the boot-file directories.
public struct BootPlaneEnvironment: Sendable {
    public var store: any InventoryStore
    public var renderer: BootScriptRenderer
    /// Directories served under `/files/`, searched in order.
    public var bootFileRoots: [BootFileRoot]
    /// The boot environment unknown MACs get; `nil` when unknown machines are ignored.
    public var unknownBootEnv: String?
    public var metricsText: @Sendable () -> String
    /// Signs and checks machine tokens (rendered into scripts, handed to the agent).
    public var machineTokens: MachineTokenAuthority
    /// Call-homes without a token (unknown machines) allowed per second, and at once.
    public var unknownCallHomeRate: (perSecond: Double, burst: Double) = (50, 200)
    /// Attaches BMCs reported by call-homes from credential sets; nil leaves them unattached.
    public var power: PowerOperations?
    public var logger: Logger

    public init(
        store: any InventoryStore, renderer: BootScriptRenderer, bootFileRoots: [BootFileRoot], unknownBootEnv: String?,
        machineTokens: MachineTokenAuthority, metricsText: @escaping @Sendable () -> String, logger: Logger
    ) {
        self.store = store
        self.renderer = renderer
        self.bootFileRoots = bootFileRoots
        self.unknownBootEnv = unknownBootEnv
        self.machineTokens = machineTokens
        self.metricsText = metricsText
        self.logger = logger
    }
}

/// The boot plane: plain HTTP on the provisioning network, for firmware, installers and the agent.
/// It carries no admin API: boot files under `/files/`, iPXE scripts under `/boot/`, the agent's endpoints.
public enum BootPlane {
    public static func makeRouter(_ environment: BootPlaneEnvironment) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorShapingMiddleware())
        router.add(middleware: MetricsMiddleware())
        if !environment.bootFileRoots.isEmpty {
            router.add(middleware: BootFileGuardMiddleware(roots: environment.bootFileRoots))
            for root in environment.bootFileRoots {
                router.add(middleware: FileMiddleware(root.path, urlBasePath: "/files", searchForIndexHtml: false))
            }
        }
        BootScriptRoutes(
            store: environment.store, renderer: environment.renderer, unknownBootEnv: environment.unknownBootEnv,
            tokens: environment.machineTokens, logger: environment.logger
        ).register(in: router)
        AgentRoutes(
            intake: CallHomeIntake(store: environment.store), tokens: environment.machineTokens,
            agentScript: environment.renderer.templatesDirectory + "/agent/anvil-agent.sh",
            unauthenticatedLimit: TokenBucket(rate: environment.unknownCallHomeRate.perSecond, burst: environment.unknownCallHomeRate.burst),
            power: environment.power,
            logger: environment.logger
        ).register(in: router)
        AdminAPI.addOperationalRoutes(to: router, metricsText: environment.metricsText)
        return router
    }
}
