import BootEnvRendering
import Hummingbird
import Logging
import ProvisioningModel

/// What the boot plane serves from: the inventory, the templates, the boot-file directories.
public struct BootPlaneEnvironment: Sendable {
    public var store: any InventoryStore { machineFiles.store }
    /// Renders the files boot environments declare (with the templates and the machine-token key).
    public var machineFiles: MachineFileRenderer
    /// Directories served under `/files/`, searched in order.
    public var bootFileRoots: [BootFileRoot]
    /// The boot environment unknown MACs get; `nil` when unknown machines are ignored.
    public var unknownBootEnv: String?
    public var metricsText: @Sendable () -> String
    /// Call-homes without a token (unknown machines) allowed per second, and at once.
    public var unknownCallHomeRate: (perSecond: Double, burst: Double) = (50, 200)
    /// Attaches BMCs reported by call-homes from credential sets; nil leaves them unattached.
    public var power: PowerOperations?
    public var logger: Logger

    public init(
        machineFiles: MachineFileRenderer, bootFileRoots: [BootFileRoot], unknownBootEnv: String?,
        metricsText: @escaping @Sendable () -> String, logger: Logger
    ) {
        self.machineFiles = machineFiles
        self.bootFileRoots = bootFileRoots
        self.unknownBootEnv = unknownBootEnv
        self.metricsText = metricsText
        self.logger = logger
    }
}

/// The boot plane: plain HTTP on the provisioning network, for firmware, installers and the agent.
/// It carries no admin API: boot files under `/files/`, iPXE scripts under `/boot/`, the other rendered
/// files under `/machines/<id>/`, the installers' `installed` callback, the agent's endpoints. Boot files
/// are answered in the channel pipeline, not by this router (see ``BootFileService``): serve it with ``server(_:)``.
public enum BootPlane {
    public static func makeRouter(_ environment: BootPlaneEnvironment) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorShapingMiddleware())
        router.add(middleware: MetricsMiddleware())
        RenderedFileRoutes(
            files: environment.machineFiles, unknownBootEnv: environment.unknownBootEnv, logger: environment.logger
        )
        .register(in: router)
        InstallCallbackRoutes(files: environment.machineFiles, logger: environment.logger).register(in: router)
        AgentRoutes(
            intake: CallHomeIntake(store: environment.store), tokens: environment.machineFiles.tokens,
            agentScript: environment.machineFiles.renderer.templatesDirectory + "/agent/anvil-agent.sh",
            unauthenticatedLimit: TokenBucket(
                rate: environment.unknownCallHomeRate.perSecond, burst: environment.unknownCallHomeRate.burst),
            power: environment.power,
            logger: environment.logger
        ).register(in: router)
        AdminAPI.addOperationalRoutes(to: router, metricsText: environment.metricsText)
        return router
    }
}
