import BootEnvRendering
import BootPolicy
import DHCPService
import FreeIPMIPower
import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Metrics
import NIOCore
import Prometheus
import ProvisioningModel
import SQLiteInventory
import ServiceLifecycle
import TFTPService

/// The assembled appliance: the one place that names concrete adapters. `anvil serve` and the
/// tests build it the same way.
public struct Appliance: Sendable {
    public let configuration: ApplianceConfiguration
    public let dataDirectory: DataDirectory
    public let store: SQLiteInventory
    /// The listeners (admin API, boot plane, TFTP), to run in a ServiceGroup.
    public let services: [any Service]
    /// Set when this start created the first admin token: print it once.
    public let firstAdminSecret: String?
    public let loadedContent: LoadedContent
    public let contentReport: ContentReport

    /// Opens the inventory, loads shipped content, makes sure an admin token and the admin
    /// certificate exist, and builds both HTTP planes. Bad content is reported, never fatal.
    public static func build(
        configuration: ApplianceConfiguration, logger: Logger, metricsText: @escaping @Sendable () -> String = { "" },
        onListening: @escaping @Sendable (_ plane: String, _ address: String) async -> Void = { _, _ in }
    ) async throws -> Appliance {
        let problems = configuration.validate()
        guard problems.isEmpty else { throw ConfigurationError(problems: problems) }
        let data = try DataDirectory(path: configuration.dataDirectory)
        let store = try SQLiteInventory(path: data.inventoryDatabase)

        let content = ContentLoader(root: URL(fileURLWithPath: configuration.contentDirectory)).load()
        for problem in content.problems { logger.warning("content skipped", metadata: ["problem": "\(problem)"]) }
        let report = try await store.loadContent(content.objects)
        for skipped in report.skipped {
            logger.warning("content skipped", metadata: ["object": "\(skipped.object)", "reason": "\(skipped.reason)"])
        }
        logger.info(
            "content loaded",
            metadata: [
                "created": "\(report.created.count)", "updated": "\(report.updated.count)", "removed": "\(report.removed.count)",
                "unchanged": "\(report.unchanged)", "skipped": "\(report.skipped.count + content.problems.count)",
            ])

        let firstAdminSecret = try await ensureAdminToken(store: store, data: data)
        try FileManager.default.createDirectory(atPath: configuration.bootFilesDirectory, withIntermediateDirectories: true)
        let startedAt = Date()
        let adminScheme = configuration.admin.tls == .off ? "http" : "https"
        let listening = ListeningAddresses()
        let bootDecisions = BootDecisionLog()
        let power = PowerOperations(
            store: store, power: FreeIPMIPower(configuration: .init(configuration.power, sdrCacheDirectory: data.sdrCacheDirectory)),
            secrets: SecretBox(key: try data.bmcSecretKey()), concurrency: configuration.power.concurrency)
        let machineFiles = MachineFileRenderer(
            store: store, renderer: BootScriptRenderer(templatesDirectory: configuration.contentDirectory + "/templates"),
            tokens: MachineTokenAuthority(key: try data.machineTokenKey()))
        let environment = AdminAPIEnvironment(
            store: store, machineFiles: machineFiles, startedAt: startedAt, metricsText: metricsText, listeners: { await listening.all },
            bootDecisions: bootDecisions, power: power)

        let adminServer: HTTPServerBuilder
        switch configuration.admin.tls {
        case .off:
            adminServer = .http1()
        case .auto:
            let names = ["localhost", "127.0.0.1", "::1", ProcessInfo.processInfo.hostName, configuration.admin.listen.host]
                + configuration.admin.certificateNames
            let material = try AdminTLSMaterial.loadOrCreate(in: data, names: names.filter { $0 != "0.0.0.0" && $0 != "::" })
            adminServer = try .tls(tlsConfiguration: AdminTLSMaterial.serverConfiguration(certificatePEM: material.certificate, privateKeyPEM: material.privateKey))
        case .files:
            let certificate = try String(contentsOfFile: configuration.admin.certificate ?? "", encoding: .utf8)
            let key = try String(contentsOfFile: configuration.admin.privateKey ?? "", encoding: .utf8)
            adminServer = try .tls(tlsConfiguration: AdminTLSMaterial.serverConfiguration(certificatePEM: certificate, privateKeyPEM: key))
        }
        let admin = Application(
            router: AdminAPI.makeRouter(environment), server: adminServer,
            configuration: .init(address: .hostname(configuration.admin.listen.host, port: configuration.admin.listen.port), serverName: "anvil"),
            onServerRunning: { channel in
                let address = "\(adminScheme)://\(Self.describe(channel.localAddress))"
                await listening.record("admin", address)
                await onListening("admin", address)
            },
            logger: logger)
        var bootPlane = BootPlaneEnvironment(
            machineFiles: machineFiles,
            bootFileRoots: [
                BootFileRoot(path: configuration.bootFilesDirectory),
                BootFileRoot(path: configuration.bootImageDirectory),
                BootFileRoot(path: configuration.bootFiles.loaderDirectory, symlinksMayLeaveRoot: true),
            ],
            unknownBootEnv: configuration.dhcp.unknownMachines == .discovery ? "discovery" : nil,
            metricsText: metricsText, logger: logger)
        bootPlane.unknownCallHomeRate = (configuration.boot.unknownCallHomesPerSecond, configuration.boot.unknownCallHomeBurst)
        bootPlane.power = power
        let boot = Application(
            router: BootPlane.makeRouter(bootPlane), server: BootPlane.server(bootPlane),
            configuration: .init(address: .hostname(configuration.boot.listen.host, port: configuration.boot.listen.port), serverName: "anvil"),
            onServerRunning: { channel in
                let address = "http://\(Self.describe(channel.localAddress))"
                await listening.record("boot", address)
                await onListening("boot", address)
            },
            logger: logger)
        var services: [any Service] = [admin, boot]
        let seconds = { (interval: Int) in interval > 0 ? Duration.seconds(interval) : nil }
        services.append(
            PowerSchedule(
                operations: power, syncInterval: seconds(configuration.power.syncIntervalSeconds),
                sensorInterval: seconds(configuration.power.sensorIntervalSeconds), logger: logger))
        if let tftp = try makeTFTPService(configuration, logger: logger, onListening: onListening) { services.append(tftp) }
        if !configuration.dhcp.interfaces.isEmpty {
            var dhcpLogger = logger
            dhcpLogger[metadataKey: "service"] = "dhcp"
            let dhcp = DHCPService(
                configuration: .init(
                    interfaces: configuration.dhcp.interfaces, bootServerPort: configuration.dhcp.bootServerPort,
                    bootPlanePort: configuration.boot.listen.port, policy: BootPolicy(unknownMachines: configuration.dhcp.unknownMachines)),
                store: store, logger: dhcpLogger, decisions: bootDecisions,
                onListening: { address in await onListening("dhcp", address) })
            services.append(dhcp)
        }
        return Appliance(
            configuration: configuration, dataDirectory: data, store: store, services: services,
            firstAdminSecret: firstAdminSecret, loadedContent: content, contentReport: report)
    }

    /// TFTP over the boot files: the site directory first, then the built discovery image, then the packaged loaders.
    static func makeTFTPService(
        _ configuration: ApplianceConfiguration, logger: Logger, onListening: @escaping @Sendable (String, String) async -> Void
    ) throws -> TFTPService? {
        guard let listen = configuration.tftp.listen else { return nil }
        let source = LayeredBootFileSource([
            DirectoryBootFileSource(root: configuration.bootFilesDirectory),
            DirectoryBootFileSource(root: configuration.bootImageDirectory),
            DirectoryBootFileSource(root: configuration.bootFiles.loaderDirectory, symlinksMayLeaveRoot: true),
        ])
        var tftpLogger = logger
        tftpLogger[metadataKey: "service"] = "tftp"
        return TFTPService(
            configuration: .init(host: listen.host, port: listen.port, maximumTransfers: configuration.tftp.maximumTransfers),
            source: source, logger: tftpLogger,
            onListening: { address in await onListening("tftp", "tftp://\(describe(address))") })
    }

    /// On the first start (no token at all), creates the `admin` token and stores its secret 0600 in the data directory.
    static func ensureAdminToken(store: SQLiteInventory, data: DataDirectory) async throws -> String? {
        guard try await store.tokens().isEmpty else { return nil }
        return try await createAdminToken(store: store, data: data, name: "admin")
    }

    /// Creates an admin token in a data directory's inventory (the server may be running) and writes its secret to the token file.
    public static func createAdminToken(in data: DataDirectory, name: String) async throws -> String {
        try await createAdminToken(store: try SQLiteInventory(path: data.inventoryDatabase), data: data, name: name)
    }

    /// Creates an admin token and writes its secret to the data directory's token file.
    static func createAdminToken(store: SQLiteInventory, data: DataDirectory, name: String) async throws -> String {
        let secret = APIToken.generateSecret()
        try DataDirectory.writeSecret(secret + "\n", to: data.adminTokenFile)
        try await store.createToken(APIToken(name: name, role: .admin, createdAt: Date()), secretHash: APIToken.hash(secret: secret))
        return secret
    }

    private static func describe(_ address: SocketAddress?) -> String {
        guard let address, let port = address.port else { return "unknown" }
        let host = address.ipAddress ?? "unknown"
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Routes swift-metrics into a Prometheus registry; call once per process. Returns the exposition.
    public static func bootstrapMetrics() -> @Sendable () -> String {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return { registry.emitToString() }
    }
}

/// Where each plane really listens (the configuration may ask for port 0).
actor ListeningAddresses {
    private(set) var all: [String: String] = [:]

    func record(_ plane: String, _ address: String) { all[plane] = address }
}

extension FreeIPMIPower.Configuration {
    init(_ power: ApplianceConfiguration.Power, sdrCacheDirectory: String) {
        self.init(
            timeouts: IPMITimeouts(session: .milliseconds(Int(power.timeoutSeconds * 1000))), retries: power.retries,
            minimumCommandInterval: .milliseconds(power.minimumIntervalMilliseconds), sdrCacheDirectory: sdrCacheDirectory)
    }
}
