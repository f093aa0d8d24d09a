import Hummingbird
import ProvisioningModel

/// The boot plane: plain HTTP on the provisioning network, for firmware, installers and the agent.
/// It carries no admin API. Rendered scripts and call-home join it with the boot issues.
public enum BootPlane {
    /// `bootFileRoots`: directories served under `/files/`, searched in order.
    public static func makeRouter(metricsText: @escaping @Sendable () -> String, bootFileRoots: [String] = []) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorShapingMiddleware())
        router.add(middleware: MetricsMiddleware())
        if !bootFileRoots.isEmpty {
            router.add(middleware: BootFileGuardMiddleware(roots: bootFileRoots))
            for root in bootFileRoots {
                router.add(middleware: FileMiddleware(root, urlBasePath: "/files", searchForIndexHtml: false))
            }
        }
        AdminAPI.addOperationalRoutes(to: router, metricsText: metricsText)
        return router
    }
}
