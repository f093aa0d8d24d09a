import NetworkPrimitives

/// A boot environment: what a machine's next network boot runs (an installer, the discovery image, local disk…).
public struct BootEnv: InventoryObject, NamedObject {
    public static let kind = ObjectKind.bootenv

    public var name: String
    public var description: String
    public var os: OperatingSystem?
    /// Kernel, initrds and arguments per architecture (`amd64`, `arm64`).
    public var architectures: [String: BootEnvArchitecture]
    /// Files rendered for the machine on request (preseed, kickstart, iPXE script…).
    public var templates: [BootEnvTemplate]
    public var requiredParams: [String]
    public var optionalParams: [String]
    /// Where `anvil bootenvs import` fetches the OS media from.
    public var sources: [BootEnvSource]

    public init(
        name: String, description: String = "", os: OperatingSystem? = nil,
        architectures: [String: BootEnvArchitecture] = [:], templates: [BootEnvTemplate] = [],
        requiredParams: [String] = [], optionalParams: [String] = [], sources: [BootEnvSource] = []
    ) {
        self.name = name
        self.description = description
        self.os = os
        self.architectures = architectures
        self.templates = templates
        self.requiredParams = requiredParams
        self.optionalParams = optionalParams
        self.sources = sources
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, os, architectures, templates, requiredParams, optionalParams, sources
    }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        os = try c.decodeIfPresent(OperatingSystem.self, forKey: .os)
        architectures = try c.decode(.architectures, default: [:])
        templates = try c.decode(.templates, default: [])
        requiredParams = try c.decode(.requiredParams, default: [])
        optionalParams = try c.decode(.optionalParams, default: [])
        sources = try c.decode(.sources, default: [])
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        for arch in architectures.keys.sorted() {
            report.check(
                Architecture(rawValue: arch) != nil && arch != "unknown", "architectures.\(arch)",
                "unknown architecture '\(arch)' (expected amd64 or arm64)")
        }
        var paths: Set<String> = []
        for (index, template) in templates.enumerated() {
            report.checkName(template.name, field: "templates[\(index)].name")
            report.check(!template.template.isEmpty, "templates[\(index)].template", "must name a template file")
            report.check(paths.insert(template.path).inserted, "templates[\(index)].path", "'\(template.path)' is rendered twice")
            report.check(!template.path.split(separator: "/").contains(".."), "templates[\(index)].path", "must not contain '..'")
        }
        report.checkNames(requiredParams, field: "requiredParams")
        report.checkNames(optionalParams, field: "optionalParams")
        var targets: [String: Int] = [:]
        for (index, source) in sources.enumerated() {
            let field = "sources[\(index)]"
            report.check(
                source.url.hasPrefix("http://") || source.url.hasPrefix("https://") || source.url.hasPrefix("file://"),
                "\(field).url", "must be an http, https or file URL")
            report.check(
                source.sha256.count == 64 && source.sha256.allSatisfy({ $0.isASCII && $0.isHexDigit }), "\(field).sha256",
                "must be 64 hexadecimal digits")
            if let architecture = source.architecture {
                report.check(
                    Architecture(rawValue: architecture) != nil && architecture != "unknown", "\(field).architecture",
                    "unknown architecture '\(architecture)' (expected amd64 or arm64)")
            }
            var named: [(field: String, path: String)] = []
            switch (source.file, source.extract) {
            case (nil, nil):
                report.add(
                    field, "needs either 'file' (the download is the boot file) or 'extract' (archive members to boot files)")
            case (.some, .some): report.add(field, "has both 'file' and 'extract'; give exactly one")
            case (let file?, nil): named = [("\(field).file", file)]
            case (nil, let extract?):
                report.check(!extract.isEmpty, "\(field).extract", "must list at least one archive member")
                for member in extract.keys.sorted() {
                    report.check(
                        BootEnvSource.normalizedMember(member) != nil, "\(field).extract.\(member)",
                        "is not an archive member path")
                    named.append(("\(field).extract.\(member)", extract[member]!))
                }
            }
            for (targetField, path) in named {
                do {
                    let checked = try BootFilePath(validating: path).description
                    if let earlier = targets[checked], earlier != index {
                        report.add(targetField, "'\(checked)' is also written by sources[\(earlier)]")
                    } else if targets[checked] == index {
                        report.add(targetField, "'\(checked)' is written twice by this source")
                    } else {
                        targets[checked] = index
                    }
                } catch {
                    report.add(targetField, "'\(path)' is not a boot-file path: \(error)")
                }
            }
        }
        return report.problems
    }
}

public struct OperatingSystem: Codable, Sendable, Hashable {
    public var family: String
    public var version: String?

    public init(family: String, version: String? = nil) {
        self.family = family
        self.version = version
    }
}

public struct BootEnvArchitecture: Codable, Sendable, Hashable {
    /// Path of the kernel in the boot file store, or empty for environments that boot no kernel (local disk).
    public var kernel: String?
    public var initrds: [String]
    /// Kernel command line; a template rendered per machine.
    public var kernelArgs: String?

    public init(kernel: String? = nil, initrds: [String] = [], kernelArgs: String? = nil) {
        self.kernel = kernel
        self.initrds = initrds
        self.kernelArgs = kernelArgs
    }

    enum CodingKeys: String, CodingKey { case kernel, initrds, kernelArgs }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kernel = try c.decodeIfPresent(String.self, forKey: .kernel)
        initrds = try c.decode(.initrds, default: [])
        kernelArgs = try c.decodeIfPresent(String.self, forKey: .kernelArgs)
    }
}

/// A file a boot environment renders per machine: `path` is what the machine asks for, `template` the source.
public struct BootEnvTemplate: Codable, Sendable, Hashable {
    /// The file iPXE fetches as `/boot/<mac>.ipxe`; every boot environment declares one.
    public static let ipxeScriptName = "ipxe"

    public var name: String
    public var path: String
    public var template: String

    public init(name: String, path: String, template: String) {
        self.name = name
        self.path = path
        self.template = template
    }
}

/// Where `anvil bootenvs import` gets OS media: a URL and the SHA-256 of what it serves, then either
/// `file` (the download itself is a boot file) or `extract` (archive member → boot-file path).
public struct BootEnvSource: Codable, Sendable, Hashable {
    public var architecture: String?
    public var url: String
    public var sha256: String
    /// The boot-file path the downloaded file is placed at.
    public var file: String?
    /// Members of the downloaded archive (ISO 9660, tar, cpio…) and the boot-file paths they land at.
    public var extract: [String: String]?

    public init(architecture: String? = nil, url: String, sha256: String, file: String? = nil, extract: [String: String]? = nil) {
        self.architecture = architecture
        self.url = url
        self.sha256 = sha256
        self.file = file
        self.extract = extract
    }

    /// Every boot-file path this source writes, as given (validation checks them).
    public var targets: [String] {
        if let file { return [file] }
        return (extract ?? [:]).keys.sorted().map { extract![$0]! }
    }

    /// An archive member path compared without leading `./` or `/` (tar writes `./casper/vmlinuz`,
    /// ISO readers `casper/vmlinuz`); nil when nothing is left.
    public static func normalizedMember(_ path: String) -> String? {
        var rest = Substring(path)
        while true {
            if rest.hasPrefix("./") {
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix("/") {
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        let components = rest.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return components.isEmpty ? nil : components.joined(separator: "/")
    }
}

extension BootEnv {
    /// Where a machine's iPXE script is on the boot plane. The MAC is spelled with hyphens: iPXE
    /// percent-encodes colons in a URL path (`52%3A54%3A…`).
    public static func ipxeScriptURL(bootBaseURL: String, mac: MACAddress) -> String {
        "\(bootBaseURL)/boot/\(mac.hyphenated).ipxe"
    }
}
