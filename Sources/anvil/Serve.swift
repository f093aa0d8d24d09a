import Appliance
import ArgumentParser
import Foundation
import Logging
import ProvisioningModel
import ServiceLifecycle
import UnixSignals

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension ApplianceConfiguration.AdminTLS: ExpressibleByArgument {}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the appliance (admin API, boot plane) until SIGTERM or SIGINT.")

    @Option(name: .long, help: "YAML configuration file; flags override it.")
    var config: String?

    @Option(name: .long, help: "Directory for the inventory, tokens and certificates (default ./anvil-data).")
    var dataDir: String?

    @Option(name: .long, help: "Directory holding bootenvs/ and templates/ (default: the current directory).")
    var contentDir: String?

    @Option(name: .long, help: "Admin API listen address host:port (default 127.0.0.1:8443).")
    var adminListen: String?

    @Option(name: .long, help: "Admin API TLS: auto (self-signed, generated once), files, or off (loopback only).")
    var adminTls: ApplianceConfiguration.AdminTLS?

    @Option(name: .long, help: "Boot plane listen address host:port (default 0.0.0.0:8080).")
    var bootListen: String?

    @Option(name: .long, help: "TFTP listen address host:port, or off (default 0.0.0.0:69).")
    var tftpListen: String?

    @Option(name: .customLong("dhcp-interface"), help: "Serve DHCP on this interface (repeat for more; default: DHCP off).")
    var dhcpInterfaces: [String] = []

    @Option(name: .long, help: "Directory of site boot files served over TFTP (default <data-dir>/boot-files).")
    var bootFilesDir: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level?

    func run() async throws {
        var configuration = try config.map(ApplianceConfiguration.load(path:)) ?? ApplianceConfiguration()
        if let dataDir { configuration.dataDirectory = dataDir }
        if let contentDir { configuration.contentDirectory = contentDir }
        if let adminTls { configuration.admin.tls = adminTls }
        if let logLevel { configuration.logLevel = logLevel.rawValue }
        var problems: [ValidationProblem] = []
        if let adminListen {
            if let address = ListenAddress(adminListen) { configuration.admin.listen = address } else {
                problems.append(ValidationProblem(field: "--admin-listen", message: "'\(adminListen)' is not host:port"))
            }
        }
        if let bootListen {
            if let address = ListenAddress(bootListen) { configuration.boot.listen = address } else {
                problems.append(ValidationProblem(field: "--boot-listen", message: "'\(bootListen)' is not host:port"))
            }
        }
        if let tftpListen {
            if tftpListen == "off" {
                configuration.tftp.listen = nil
            } else if let address = ListenAddress(tftpListen) {
                configuration.tftp.listen = address
            } else {
                problems.append(ValidationProblem(field: "--tftp-listen", message: "'\(tftpListen)' is not host:port or off"))
            }
        }
        if let bootFilesDir { configuration.bootFiles.directory = bootFilesDir }
        if !dhcpInterfaces.isEmpty { configuration.dhcp.interfaces = dhcpInterfaces }
        problems += configuration.validate()
        guard problems.isEmpty else { throw ValidationError(ConfigurationError(problems: problems).description) }

        umask(0o077)  // the inventory holds token hashes and, later, encrypted secrets: owner only
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "anvil")
        let metrics = Appliance.bootstrapMetrics()
        let listeners = ListenerFile(path: URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("listeners.json").path)
        await listeners.remove()  // a killed server leaves a stale one behind
        let appliance = try await Appliance.build(configuration: configuration, logger: logger, metricsText: metrics) { plane, address in
            logger.info("listening", metadata: ["plane": "\(plane)", "address": "\(address)"])
            await listeners.record(plane: plane, address: address)
        }
        if let secret = appliance.firstAdminSecret {
            print("Created the first admin API token (shown once; also in \(appliance.dataDirectory.adminTokenFile), mode 0600):")
            print("  \(secret)")
            fflush(nil)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: appliance.services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [.sigquit], logger: logger))
        try await group.run()
        await listeners.remove()
        logger.info("stopped")
    }
}

/// `listeners.json` in the data directory: where this server actually listens (ports may be 0 in the
/// configuration), so local CLI calls and tests can find it.
actor ListenerFile {
    let path: String
    var planes: [String: String] = [:]

    init(path: String) { self.path = path }

    func record(plane: String, address: String) {
        planes[plane] = address
        if let data = try? JSONEncoder().encode(planes) { try? data.write(to: URL(fileURLWithPath: path), options: .atomic) }
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

struct AdminTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-token",
        abstract: "Create a new admin token directly in a local data directory (recovery when no token is at hand).",
        discussion: "Writes the secret to <data-dir>/admin.token (mode 0600) and prints it. Works while the server runs.")

    @Option(name: .long, help: "The appliance's data directory.")
    var dataDir = "./anvil-data"

    @Option(name: .long, help: "Name of the new token.")
    var name = "admin-\(Int(Date().timeIntervalSince1970))"

    func run() async throws {
        guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: dataDir).appendingPathComponent("inventory.db").path) else {
            throw ValidationError("no inventory in \(dataDir): start `anvil serve --data-dir \(dataDir)` first")
        }
        let secret = try await Appliance.createAdminToken(in: try DataDirectory(path: dataDir), name: name)
        print(secret)
    }
}
