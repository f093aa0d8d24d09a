import Foundation
import NetworkPrimitives
import ProvisioningModel

/// What `anvil bootenvs check` found: the boot environments it read, and everything wrong.
public struct BootEnvCheckReport: Sendable {
    public struct Checked: Sendable {
        /// The file, relative to the content directory (`bootenvs/local.yaml`).
        public var source: String
        public var name: String
        /// Names of the files it declares (`ipxe`, `preseed`).
        public var files: [String]
    }

    public var checked: [Checked] = []
    public var problems: [ContentProblem] = []
}

/// Checks a content directory before anything boots from it: every `bootenvs/*.yaml` loads (the
/// server's own `ContentLoader`), each declared architecture names a kernel and initrds, the params a
/// boot environment lists are defined, and every declared file renders (template present, syntax
/// right, no unknown variable or undefined param) for a made-up machine whose params all have values.
public struct BootEnvCheck: Sendable {
    public var root: URL

    public init(root: URL) { self.root = root }

    /// The machine every file is rendered for; its id shows where declared paths must live.
    static let sampleID = ObjectID("00000000-0000-4000-8000-00000000c4ec")!
    static let sampleMAC = MACAddress(0x52, 0x54, 0x00, 0x00, 0xc4, 0xec)

    public func run() -> BootEnvCheckReport {
        let loaded = ContentLoader(root: root).load()
        var report = BootEnvCheckReport(problems: loaded.problems)
        let params = loaded.objects.compactMap { $0.object as? Param }
        let renderer = BootScriptRenderer(templatesDirectory: root.appendingPathComponent("templates").path)
        for content in loaded.objects {
            guard let bootEnv = content.object as? BootEnv else { continue }
            report.checked.append(.init(source: content.source, name: bootEnv.name, files: bootEnv.templates.map(\.name)))
            report.problems += problems(of: bootEnv, params: params, renderer: renderer).map {
                ContentProblem(file: content.source, line: nil, message: $0)
            }
        }
        return report
    }

    func problems(of bootEnv: BootEnv, params: [Param], renderer: BootScriptRenderer) -> [String] {
        var problems: [String] = []
        for (architecture, env) in bootEnv.architectures.sorted(by: { $0.key < $1.key }) {
            if env.kernel?.isEmpty ?? true { problems.append("architectures.\(architecture): names no kernel") }
            if env.initrds.isEmpty { problems.append("architectures.\(architecture): names no initrds") }
        }
        if !bootEnv.templates.contains(where: { $0.name == BootEnvTemplate.ipxeScriptName }) {
            problems.append("declares no template named ipxe (what /boot/<mac>.ipxe serves)")
        }
        let defined = Set(params.map(\.name))
        for name in bootEnv.requiredParams + bootEnv.optionalParams where !defined.contains(name) {
            problems.append("param '\(name)' is listed but not defined (templates/content)")
        }
        // Each architecture renders its own kernel arguments; a machine of each must get every file.
        let architectures = bootEnv.architectures.isEmpty ? [Architecture.amd64.rawValue] : bootEnv.architectures.keys.sorted()
        for architecture in architectures {
            let subject = Self.sampleSubject(bootEnv: bootEnv, architecture: architecture, params: params)
            for file in bootEnv.templates {
                let label = "templates.\(file.name) (\(file.template))"
                do {
                    let path = try renderer.declaredPath(of: file, for: subject)
                    if file.name != BootEnvTemplate.ipxeScriptName && !path.hasPrefix("machines/\(Self.sampleID)/") {
                        problems.append(
                            "\(label): path '\(file.path)' is never served; declared files live under machines/{{ machine.id }}/")
                    }
                    _ = try renderer.render(file, for: subject)
                } catch {
                    let undefinedParam = error.message.contains("unknown variable 'params.") ? " (no such param is defined)" : ""
                    problems.append(
                        "\(label): \(error.template == file.template ? "" : error.template + ": ")\(error.message)\(undefinedParam)"
                    )
                }
            }
        }
        var seen: Set<String> = []
        return problems.filter { seen.insert($0).inserted }
    }

    /// A machine with every defined param set: its default, else a value of its type.
    static func sampleSubject(bootEnv: BootEnv, architecture: String, params: [Param]) -> RenderSubject {
        var values: [String: JSONValue] = [:]
        for param in params {
            values[param.name] =
                param.default
                ?? {
                    switch param.schema.type {
                    case .integer: .integer(1)
                    case .number: .number(1)
                    case .boolean: .bool(true)
                    case .array: .array([])
                    case .object: .object([:])
                    case .string, .any: .string("<\(param.name)>")
                    }
                }()
        }
        // Listed but undefined params are reported once on their own; here they must not hide the rest.
        for name in bootEnv.requiredParams + bootEnv.optionalParams where values[name] == nil {
            values[name] = .string("<\(name)>")
        }
        let machine = Machine(
            id: sampleID, name: "bootenv-check", architecture: Architecture(rawValue: architecture) ?? .amd64,
            bootEnv: bootEnv.name,
            params: values, interfaces: [NetworkInterface(mac: sampleMAC, name: "eth0", boot: true)])
        return RenderSubject(
            mac: sampleMAC, machine: machine, bootEnv: bootEnv, params: values, bootURL: "http://anvil.invalid:8080")
    }
}
