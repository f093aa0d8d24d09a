import Foundation
import NetworkPrimitives
import ProvisioningModel
import Stencil

/// Why a template could not be rendered; says which template and what is wrong.
public struct RenderError: Error, CustomStringConvertible, Sendable {
    public var template: String
    public var message: String

    public init(template: String, message: String) {
        self.template = template
        self.message = message
    }

    public var description: String { "\(template): \(message)" }
}

/// Everything a boot environment's templates may use, for one machine (or an unknown MAC).
public struct RenderSubject: Sendable {
    public var mac: MACAddress
    public var machine: Machine?
    public var bootEnv: BootEnv
    /// Resolved params (attribute chain) by name.
    public var params: [String: JSONValue]
    /// The boot plane as the machine reaches it, e.g. `http://10.0.0.1:8080`.
    public var bootURL: String
    /// The machine's short-lived token, for installers and the agent to call back; none for unknown MACs.
    public var token: String?

    public init(mac: MACAddress, machine: Machine?, bootEnv: BootEnv, params: [String: JSONValue], bootURL: String) {
        self.mac = mac
        self.machine = machine
        self.bootEnv = bootEnv
        self.params = params
        self.bootURL = bootURL
    }
}

/// Renders `templates/` with Stencil against a typed context. Unlike plain Stencil, a variable the
/// context does not have is an error naming it, never an empty string in a boot script.
public struct BootScriptRenderer: Sendable {
    public let templatesDirectory: String
    private let cache: TemplateCache

    public init(templatesDirectory: String) {
        self.templatesDirectory = templatesDirectory
        cache = TemplateCache(templatesDirectory: templatesDirectory)
    }

    /// Changes seen to the template files since this renderer was made: output rendered under an
    /// older generation may differ from what the templates give now.
    public var templateGeneration: Int { cache.generation }

    /// The boot environment's iPXE script (its template named `ipxe`) for the subject.
    public func ipxeScript(for subject: RenderSubject) throws(RenderError) -> String {
        guard let file = subject.bootEnv.templates.first(where: { $0.name == BootEnvTemplate.ipxeScriptName }) else {
            throw RenderError(
                template: subject.bootEnv.name, message: "boot environment \(subject.bootEnv.name) has no template named ipxe")
        }
        return try render(file, for: subject)
    }

    /// One file the boot environment declares, rendered for the subject. The boot environment's
    /// required params must all have a value: an installer that starts without its root password
    /// fails late and far from the cause, so the file is refused instead.
    public func render(_ file: BootEnvTemplate, for subject: RenderSubject) throws(RenderError) -> String {
        if let missing = subject.bootEnv.requiredParams.first(where: { subject.params[$0] == nil || subject.params[$0] == .null })
        {
            throw RenderError(
                template: file.template,
                message: "required param '\(missing)' is not set (boot environment \(subject.bootEnv.name) requires it)")
        }
        return try render(template: file.template, for: subject)
    }

    /// Any template under the templates directory, rendered with the subject's context (a preview
    /// of a task script or a template not yet declared by a boot environment).
    public func render(template path: String, for subject: RenderSubject) throws(RenderError) -> String {
        try render(path, values: try context(for: subject))
    }

    /// The declared file the boot environment serves at `path` for the subject (paths are templates
    /// too, e.g. `machines/{{ machine.id }}/preseed.cfg`), or nil when it declares none there.
    public func declaredFile(at path: String, for subject: RenderSubject) throws(RenderError) -> BootEnvTemplate? {
        let values = try context(for: subject)
        for file in subject.bootEnv.templates {
            if try declaredPath(of: file, values: values, bootEnv: subject.bootEnv.name) == path { return file }
        }
        return nil
    }

    /// Where the subject fetches a declared file, relative to the boot plane's root.
    public func declaredPath(of file: BootEnvTemplate, for subject: RenderSubject) throws(RenderError) -> String {
        try declaredPath(of: file, values: try context(for: subject), bootEnv: subject.bootEnv.name)
    }

    private func declaredPath(of file: BootEnvTemplate, values: [String: Any], bootEnv: String) throws(RenderError) -> String {
        try renderText(file.path, name: "\(bootEnv) templates.\(file.name).path", values: values)
    }

    /// The values templates see: `machine`, `params`, `bootenv`, `env` (this architecture's kernel,
    /// initrds and rendered kernel arguments), `server`, `boot`, `token` (empty for unknown machines).
    public func context(for subject: RenderSubject) throws(RenderError) -> [String: Any] {
        let architecture = subject.machine?.architecture.rawValue ?? "amd64"
        var values: [String: Any] = [
            "machine": [
                "id": subject.machine?.id.description ?? "", "name": subject.machine?.name ?? "unknown-\(subject.mac.hyphenated)",
                "mac": subject.mac.description, "macs": (subject.machine?.macAddresses ?? [subject.mac]).map(\.description),
                "arch": architecture, "uuid": subject.machine?.facts.systemUUID ?? "",
                "state": subject.machine?.state.rawValue ?? "unknown",
            ] as [String: Any],
            "params": subject.params.mapValues(Self.plain),
            "bootenv": ["name": subject.bootEnv.name, "description": subject.bootEnv.description],
            "server": ["bootURL": subject.bootURL],
            "token": subject.token ?? "",
            // `interface` for installers (a MAC names the NIC), `bootif` in the BOOTIF= form (01-aa-bb-…),
            // `scriptURL` this machine's iPXE script, as DHCP hands it out.
            "boot": [
                "interface": subject.mac.description, "bootif": "01-" + subject.mac.hyphenated,
                "scriptURL": BootEnv.ipxeScriptURL(bootBaseURL: subject.bootURL, mac: subject.mac),
            ],
        ]
        if let env = subject.bootEnv.architectures[architecture] {
            let kernelArgs = try env.kernelArgs.map { (text) throws(RenderError) in
                try renderText(text, name: "\(subject.bootEnv.name) kernelArgs", values: values)
            }
            values["env"] =
                [
                    "kernel": env.kernel ?? "", "initrds": env.initrds,
                    "initrdNames": env.initrds.map { URL(fileURLWithPath: $0).lastPathComponent }, "kernelArgs": kernelArgs ?? "",
                ] as [String: Any]
        }
        return values
    }

    /// Renders the template file at `path` (relative to the templates directory).
    public func render(_ path: String, values: [String: Any]) throws(RenderError) -> String {
        guard !path.split(separator: "/").contains(".."), let text = cache.text(of: path) else {
            throw RenderError(template: path, message: "no such template under \(templatesDirectory)")
        }
        return try renderText(text, name: path, values: values)
    }

    func renderText(_ text: String, name: String, values: [String: Any]) throws(RenderError) -> String {
        let parsed = cache.parsed(text, name: name)
        try Self.checkVariables(
            in: parsed.tags, name: name, values: values,
            loader: { included in
                cache.text(of: included).map { cache.parsed($0, name: included).tags }
            })
        do {
            return try renderNodes(try parsed.nodes.get(), Context(dictionary: values, environment: cache.environment))
        } catch let error as RenderError {
            throw error
        } catch {
            throw RenderError(template: name, message: "\(error)")
        }
    }

    // MARK: Strict variables

    /// Every `{{ a.b }}`, `{% if a.b %}` and `{% for x in a.b %}` must name something the context has;
    /// loop variables are known inside their loop. Included templates are checked too.
    static func checkVariables(
        in tags: [TemplateTag], name: String, values: [String: Any], loader: (String) -> [TemplateTag]?, depth: Int = 0
    ) throws(RenderError) {
        guard depth < 8 else { throw RenderError(template: name, message: "includes nest deeper than 8") }
        var loopVariables: Set<String> = []
        for tag in tags {
            if let included = tag.include {
                guard let nested = loader(included) else {
                    throw RenderError(template: name, message: "line \(tag.line): included template '\(included)' not found")
                }
                try checkVariables(in: nested, name: included, values: values, loader: loader, depth: depth + 1)
            }
            loopVariables.formUnion(tag.loopVariables)
            for path in tag.variables where !loopVariables.contains(String(path.prefix(while: { $0 != "." }))) {
                guard resolve(path, in: values) else {
                    throw RenderError(template: name, message: "line \(tag.line): unknown variable '\(path)'")
                }
            }
        }
    }

    private static func resolve(_ path: String, in values: [String: Any]) -> Bool {
        var current: Any = values
        for segment in path.split(separator: ".").map(String.init) {
            if let dictionary = current as? [String: Any], let next = dictionary[segment] {
                current = next
            } else if let array = current as? [Any], let index = Int(segment), array.indices.contains(index) {
                current = array[index]
            } else if let array = current as? [String], let index = Int(segment), array.indices.contains(index) {
                current = array[index]
            } else {
                return false
            }
        }
        return true
    }

    static func plain(_ value: JSONValue) -> Any {
        switch value {
        case .null: ""
        case .bool(let flag): flag
        case .integer(let number): number
        case .number(let number): number
        case .string(let text): text
        case .array(let elements): elements.map(plain)
        case .object(let fields): fields.mapValues(plain)
        }
    }
}
