import BootPolicy
import Foundation
import ProvisioningModel
import Yams

/// A `host:port` to listen on.
public struct ListenAddress: Codable, Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (or `[v6]:port`).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = ListenAddress(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not host:port")
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Everything `anvil serve` can be told, from a YAML file and flags. Defaults make a working
/// single-node appliance: SQLite in `./anvil-data`, the admin API on loopback with TLS.
public struct ApplianceConfiguration: Codable, Sendable {
    public enum AdminTLS: String, Codable, Sendable {
        /// A self-signed certificate generated on first start, kept in the data directory.
        case auto
        /// Certificate and key from `admin.certificate` / `admin.privateKey`.
        case files
        /// Plain HTTP: only for a loopback-only admin API.
        case off
    }

    public struct Admin: Codable, Sendable {
        public var listen = ListenAddress(host: "127.0.0.1", port: 8443)
        public var tls = AdminTLS.auto
        public var certificate: String?
        public var privateKey: String?
        /// Extra host names and addresses for the generated certificate.
        public var certificateNames: [String] = []

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable { case listen, tls, certificate, privateKey, certificateNames }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            listen = try c.decodeIfPresent(ListenAddress.self, forKey: .listen) ?? listen
            tls = try c.decodeIfPresent(AdminTLS.self, forKey: .tls) ?? tls
            certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
            privateKey = try c.decodeIfPresent(String.self, forKey: .privateKey)
            certificateNames = try c.decodeIfPresent([String].self, forKey: .certificateNames) ?? []
        }
    }

    public struct Boot: Codable, Sendable {
        public var listen = ListenAddress(host: "0.0.0.0", port: 8080)
        /// Call-homes from unknown machines (no token) accepted per second on average; a rack
        /// powering on at once fits in the burst, a flood from one bad actor does not.
        public var unknownCallHomesPerSecond = 50.0
        public var unknownCallHomeBurst = 500.0

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable { case listen, unknownCallHomesPerSecond, unknownCallHomeBurst }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            listen = try c.decodeIfPresent(ListenAddress.self, forKey: .listen) ?? listen
            unknownCallHomesPerSecond = try c.decodeIfPresent(Double.self, forKey: .unknownCallHomesPerSecond) ?? unknownCallHomesPerSecond
            unknownCallHomeBurst = try c.decodeIfPresent(Double.self, forKey: .unknownCallHomeBurst) ?? unknownCallHomeBurst
        }
    }

    /// TFTP for firmware that fetches its first loader that way (legacy PXE, UEFI PXE).
    public struct TFTP: Codable, Sendable {
        /// `host:port`; `nil` (the YAML value `off`) turns TFTP off.
        public var listen: ListenAddress? = ListenAddress(host: "0.0.0.0", port: 69)
        /// Transfers running at once; one more request is told the server is busy.
        public var maximumTransfers = 512

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable { case listen, maximumTransfers }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if (try? c.decode(String.self, forKey: .listen)) == "off" {
                listen = nil
            } else {
                listen = try c.decodeIfPresent(ListenAddress.self, forKey: .listen) ?? listen
            }
            maximumTransfers = try c.decodeIfPresent(Int.self, forKey: .maximumTransfers) ?? maximumTransfers
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(listen?.description ?? "off", forKey: .listen)
            try c.encode(maximumTransfers, forKey: .maximumTransfers)
        }
    }

    /// DHCPv4 on chosen interfaces. Off until interfaces are named: a DHCP server answering on a
    /// network nobody chose breaks that network.
    public struct DHCP: Codable, Sendable {
        /// Interface names (`eth1`); each needs an IPv4 address inside a subnet defined in the inventory.
        public var interfaces: [String] = []
        /// What unknown machines get: the discovery image, or no boot information.
        public var unknownMachines = UnknownMachinePolicy.discovery
        /// The PXE boot-server port answered in proxy mode; `nil` (YAML `off`) turns it off.
        public var bootServerPort: Int? = 4011

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable { case interfaces, unknownMachines, bootServerPort }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            interfaces = try c.decodeIfPresent([String].self, forKey: .interfaces) ?? []
            unknownMachines = try c.decodeIfPresent(UnknownMachinePolicy.self, forKey: .unknownMachines) ?? unknownMachines
            if (try? c.decode(String.self, forKey: .bootServerPort)) == "off" {
                bootServerPort = nil
            } else {
                bootServerPort = try c.decodeIfPresent(Int.self, forKey: .bootServerPort) ?? bootServerPort
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(interfaces, forKey: .interfaces)
            try c.encode(unknownMachines, forKey: .unknownMachines)
            if let bootServerPort { try c.encode(bootServerPort, forKey: .bootServerPort) } else { try c.encode("off", forKey: .bootServerPort) }
        }
    }

    /// Where boot files (loaders, kernels, images) are read from, in order.
    public struct BootFiles: Codable, Sendable {
        /// Site files; `<dataDirectory>/boot-files` when not set. Created on start.
        public var directory: String?
        /// Loaders shipped by Debian's `ipxe` package (`undionly.kpxe`, `ipxe.efi`, `snponly.efi`),
        /// served as they are so a package upgrade takes effect without a copy.
        public var loaderDirectory = "/usr/lib/ipxe"
        /// The discovery image built by `deploy/build-discovery-image.sh` (`discovery/amd64/...`);
        /// `<contentDirectory>/.build-discovery/boot-files` when not set. Searched after the site files.
        public var imageDirectory: String?

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable { case directory, loaderDirectory, imageDirectory }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            directory = try c.decodeIfPresent(String.self, forKey: .directory)
            loaderDirectory = try c.decodeIfPresent(String.self, forKey: .loaderDirectory) ?? loaderDirectory
            imageDirectory = try c.decodeIfPresent(String.self, forKey: .imageDirectory)
        }
    }

    /// BMC commands over IPMI, the power-state sync and the sensor poll.
    public struct Power: Codable, Sendable {
        /// Give up on a BMC after this long per session or command.
        public var timeoutSeconds = 10.0
        /// Extra attempts when no session could be opened.
        public var retries = 1
        /// Pause between two commands to the same BMC.
        public var minimumIntervalMilliseconds = 100
        /// Machines a bulk command works on at once.
        public var concurrency = 16
        /// How often every BMC is asked for its power state (drift is recorded); 0 turns it off.
        public var syncIntervalSeconds = 300
        /// How often every BMC's sensors are read; 0 turns it off.
        public var sensorIntervalSeconds = 600

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable {
            case timeoutSeconds, retries, minimumIntervalMilliseconds, concurrency, syncIntervalSeconds, sensorIntervalSeconds
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? timeoutSeconds
            retries = try c.decodeIfPresent(Int.self, forKey: .retries) ?? retries
            minimumIntervalMilliseconds = try c.decodeIfPresent(Int.self, forKey: .minimumIntervalMilliseconds) ?? minimumIntervalMilliseconds
            concurrency = try c.decodeIfPresent(Int.self, forKey: .concurrency) ?? concurrency
            syncIntervalSeconds = try c.decodeIfPresent(Int.self, forKey: .syncIntervalSeconds) ?? syncIntervalSeconds
            sensorIntervalSeconds = try c.decodeIfPresent(Int.self, forKey: .sensorIntervalSeconds) ?? sensorIntervalSeconds
        }
    }

    public var dataDirectory = "./anvil-data"
    /// Holds `bootenvs/` and `templates/`; the source tree when run from a checkout.
    public var contentDirectory = "."
    public var logLevel = "info"
    public var admin = Admin()
    public var boot = Boot()
    public var tftp = TFTP()
    public var dhcp = DHCP()
    public var bootFiles = BootFiles()
    public var power = Power()

    public init() {}

    /// The site boot-file directory, resolved against the data directory when not configured.
    public var bootFilesDirectory: String { bootFiles.directory ?? dataDirectory + "/boot-files" }
    /// The built discovery image's directory, resolved against the content directory when not configured.
    public var bootImageDirectory: String { bootFiles.imageDirectory ?? contentDirectory + "/.build-discovery/boot-files" }

    enum CodingKeys: String, CodingKey, CaseIterable { case dataDirectory, contentDirectory, logLevel, admin, boot, tftp, dhcp, bootFiles, power }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dataDirectory = try c.decodeIfPresent(String.self, forKey: .dataDirectory) ?? dataDirectory
        contentDirectory = try c.decodeIfPresent(String.self, forKey: .contentDirectory) ?? contentDirectory
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? logLevel
        admin = try c.decodeIfPresent(Admin.self, forKey: .admin) ?? admin
        boot = try c.decodeIfPresent(Boot.self, forKey: .boot) ?? boot
        tftp = try c.decodeIfPresent(TFTP.self, forKey: .tftp) ?? tftp
        dhcp = try c.decodeIfPresent(DHCP.self, forKey: .dhcp) ?? dhcp
        bootFiles = try c.decodeIfPresent(BootFiles.self, forKey: .bootFiles) ?? bootFiles
        power = try c.decodeIfPresent(Power.self, forKey: .power) ?? power
    }

    /// Reads a YAML configuration file; unknown keys are errors (a typo must not silently fall back to a default).
    public static func load(path: String) throws -> ApplianceConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(problems: [ValidationProblem(field: path, message: "cannot be read: \(error.localizedDescription)")])
        }
        do {
            if let node = try Yams.compose(yaml: text) {
                var problems: [ValidationProblem] = []
                Self.checkKeys(node, allowed: Set(CodingKeys.allCases.map(\.rawValue)), path: "", into: &problems)
                let sections = [
                    ("admin", Admin.CodingKeys.allCases.map(\.rawValue)), ("boot", Boot.CodingKeys.allCases.map(\.rawValue)),
                    ("tftp", TFTP.CodingKeys.allCases.map(\.rawValue)), ("dhcp", DHCP.CodingKeys.allCases.map(\.rawValue)),
                    ("bootFiles", BootFiles.CodingKeys.allCases.map(\.rawValue)), ("power", Power.CodingKeys.allCases.map(\.rawValue)),
                ]
                for (section, keys) in sections {
                    if let child = node.mapping?[section] { Self.checkKeys(child, allowed: Set(keys), path: section, into: &problems) }
                }
                if !problems.isEmpty { throw ConfigurationError(problems: problems) }
                return try YAMLDecoder().decode(ApplianceConfiguration.self, from: node)
            }
            return ApplianceConfiguration()
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(problems: [ValidationProblem(field: path, message: "\(error)")])
        }
    }

    private static func checkKeys(_ node: Yams.Node, allowed: Set<String>, path: String, into problems: inout [ValidationProblem]) {
        for (key, _) in node.mapping ?? [:] {
            guard let name = key.string, !allowed.contains(name) else { continue }
            let field = path.isEmpty ? name : "\(path).\(name)"
            problems.append(ValidationProblem(field: field, message: "unknown setting (line \(key.mark?.line ?? 0); known: \(allowed.sorted().joined(separator: ", ")))"))
        }
    }

    /// Every problem with the configuration, each naming its setting.
    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.check(!dataDirectory.isEmpty, "dataDirectory", "must not be empty")
        report.check(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel), "logLevel",
            "'\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        if admin.tls == .files {
            report.check(admin.certificate != nil, "admin.certificate", "is required when admin.tls is files")
            report.check(admin.privateKey != nil, "admin.privateKey", "is required when admin.tls is files")
        }
        if admin.tls == .off {
            report.check(["127.0.0.1", "::1", "localhost"].contains(admin.listen.host), "admin.tls",
                "off is only allowed on a loopback admin listener, not \(admin.listen.host)")
        }
        if admin.listen.port != 0 && admin.listen == boot.listen {
            report.add("boot.listen", "must differ from admin.listen (the planes are separate)")
        }
        for interface in dhcp.interfaces {
            report.check(!interface.isEmpty && interface.utf8.count < 16 && !interface.contains("/"), "dhcp.interfaces",
                "'\(interface)' is not an interface name")
        }
        if !dhcp.interfaces.isEmpty {
            report.check(boot.listen.port != 0, "boot.listen", "needs a fixed port when DHCP is on: DHCP hands its URLs to machines")
        }
        if let port = dhcp.bootServerPort { report.check((1...65535).contains(port), "dhcp.bootServerPort", "must be from 1 to 65535 or off") }
        report.check((1...65536).contains(tftp.maximumTransfers), "tftp.maximumTransfers", "must be from 1 to 65536")
        report.check(power.timeoutSeconds >= 1 && power.timeoutSeconds <= 300, "power.timeoutSeconds", "must be from 1 to 300")
        report.check((0...10).contains(power.retries), "power.retries", "must be from 0 to 10")
        report.check((0...60_000).contains(power.minimumIntervalMilliseconds), "power.minimumIntervalMilliseconds", "must be from 0 to 60000")
        report.check((1...1024).contains(power.concurrency), "power.concurrency", "must be from 1 to 1024")
        report.check(power.syncIntervalSeconds == 0 || power.syncIntervalSeconds >= 10, "power.syncIntervalSeconds", "must be 0 (off) or at least 10")
        report.check(power.sensorIntervalSeconds == 0 || power.sensorIntervalSeconds >= 10, "power.sensorIntervalSeconds", "must be 0 (off) or at least 10")
        return report.problems
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var problems: [ValidationProblem]

    public init(problems: [ValidationProblem]) { self.problems = problems }

    public var description: String {
        "invalid configuration:\n" + problems.map { "  \($0.field): \($0.message)" }.joined(separator: "\n")
    }
}
