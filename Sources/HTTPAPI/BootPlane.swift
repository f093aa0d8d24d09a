import Hummingbird
import ProvisioningModel

/// The boot plane: plain HTTP on the provisioning network, for firmware, installers and the agent.
/// It carries no admin API. Boot files, rendered scripts and call-home join it with the boot issues.
public enum BootPlane {
    public static func makeRouter(metricsText: @escaping @Sendable () -> String) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorShapingMiddleware())
        router.add(middleware: MetricsMiddleware())
        AdminAPI.addOperationalRoutes(to: router, metricsText: metricsText)
        return router
    }
}
