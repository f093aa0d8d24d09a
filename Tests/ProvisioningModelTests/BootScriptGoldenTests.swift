import ApplianceTesting
import BootEnvRendering
import Foundation
import NetworkPrimitives
import ProvisioningModel
import Testing

/// Every shipped boot environment's iPXE script, rendered for fixture machines and compared with the
/// golden text in `GoldenScripts/` (rewritten only with ANVIL_UPDATE_GOLDEN=1).
@Suite("Boot script goldens")
struct BootScriptGoldenTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var bootEnv: String
        var machine: Machine?
        var testDescription: String { name }
    }

    static let mac = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    static let fixedID = ObjectID("0b1c5d2e-3f40-4a51-8b62-7c83d94ea5f6")!

    static func machine(bootEnv: String, params: [String: JSONValue] = [:]) -> Machine {
        Machine(
            id: fixedID, name: "node-07", state: .deploying, bootEnv: bootEnv, params: params,
            interfaces: [NetworkInterface(mac: mac, name: "eno1", boot: true)])
    }

    static let cases: [Case] = [
        Case(name: "discovery-unknown", bootEnv: "discovery", machine: nil),
        Case(name: "discovery-console-param", bootEnv: "discovery", machine: machine(bootEnv: "discovery", params: ["kernel-console": "ttyS1,9600"])),
        Case(name: "local", bootEnv: "local", machine: machine(bootEnv: "local")),
        Case(name: "debian-12-install", bootEnv: "debian-12-install", machine: machine(bootEnv: "debian-12-install", params: ["root-password-hash": "$6$x$y"])),
    ]

    static let content = ContentLoader(root: URL(fileURLWithPath: AnvilServer.repositoryRoot)).load()
    static var goldenDirectory: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("GoldenScripts").path }

    @Test("shipped content loads without problems")
    func contentLoads() {
        #expect(Self.content.problems.isEmpty, "\(Self.content.problems)")
    }

    /// The subject as the boot plane builds it: the machine's params over the shipped defaults.
    static func subject(_ testCase: Case) throws -> RenderSubject {
        let bootEnv = try #require(Self.content.objects.compactMap { $0.object as? BootEnv }.first { $0.name == testCase.bootEnv })
        let definitions = Self.content.objects.compactMap { $0.object as? Param }
        let chain = AttributeChain(machine: testCase.machine ?? Self.machine(bootEnv: testCase.bootEnv), profiles: [])
        var params: [String: JSONValue] = [:]
        for definition in definitions {
            if let value = chain.resolve(definition.name, definition: definition).value { params[definition.name] = value }
        }
        for (name, value) in testCase.machine?.params ?? [:] { params[name] = value }
        return RenderSubject(mac: Self.mac, machine: testCase.machine, bootEnv: bootEnv, params: params, bootURL: "http://10.0.0.1:8080")
    }

    static let renderer = BootScriptRenderer(templatesDirectory: AnvilServer.repositoryRoot + "/templates")

    /// `text` must equal `GoldenScripts/<name>`; ANVIL_UPDATE_GOLDEN=1 rewrites it first.
    static func expectGolden(_ text: String, named name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = Self.goldenDirectory + "/\(name)"
        if ProcessInfo.processInfo.environment["ANVIL_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: Self.goldenDirectory, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let golden = try #require(
            try? String(contentsOfFile: path, encoding: .utf8), "no golden \(path): run with ANVIL_UPDATE_GOLDEN=1", sourceLocation: sourceLocation)
        #expect(text == golden, sourceLocation: sourceLocation)
    }

    @Test("each shipped boot environment renders its iPXE script exactly as the golden text", arguments: cases)
    func golden(_ testCase: Case) throws {
        let script = try Self.renderer.ipxeScript(for: try Self.subject(testCase))
        try Self.expectGolden(script, named: "\(testCase.name).ipxe")
        #expect(script.hasPrefix("#!ipxe\n"))
    }

    @Test("the debian-12-install preseed for a fixture machine is exactly the golden text")
    func preseedGolden() throws {
        let machine = Self.machine(
            bootEnv: "debian-12-install",
            params: [
                "root-password-hash": "$6$x$y", "domain": "lab.example", "install-disk": "/dev/nvme0n1",
                "ssh-authorized-keys": ["ssh-ed25519 AAAAC3Nza one@example", "ssh-ed25519 AAAAC3Nzb two@example"],
            ])
        var subject = try Self.subject(Case(name: "preseed", bootEnv: "debian-12-install", machine: machine))
        subject.token = "m1.test-token"
        let preseed = try #require(subject.bootEnv.templates.first { $0.name == "preseed" })
        #expect(try Self.renderer.declaredPath(of: preseed, for: subject) == "machines/\(Self.fixedID)/preseed.cfg")
        try Self.expectGolden(try Self.renderer.render(preseed, for: subject), named: "debian-12-install.preseed.cfg")
    }

    @Test("a declared file is refused while a required param is unset, naming the param and the template")
    func requiredParamUnset() throws {
        let subject = try Self.subject(Case(name: "no-password", bootEnv: "debian-12-install", machine: Self.machine(bootEnv: "debian-12-install")))
        let preseed = try #require(subject.bootEnv.templates.first { $0.name == "preseed" })
        let error = #expect(throws: RenderError.self) { try Self.renderer.render(preseed, for: subject) }
        #expect(error?.template == "preseed/debian-12.preseed.tmpl")
        #expect(error?.message == "required param 'root-password-hash' is not set (boot environment debian-12-install requires it)")
    }

    @Test("a shipped content directory passes bootenvs check; each kind of mistake is reported against its file")
    func bootEnvCheck() throws {
        let shipped = BootEnvCheck(root: URL(fileURLWithPath: AnvilServer.repositoryRoot)).run()
        #expect(shipped.problems.isEmpty, "\(shipped.problems)")
        #expect(shipped.checked.map(\.name).sorted() == ["debian-12-install", "discovery", "local"])

        let directory = try TemporaryDirectory(prefix: "anvil-bootenv-check")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("bootenvs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.file("templates/ipxe"), withIntermediateDirectories: true)
        try "#!ipxe\n{% if machine.name %}echo {{ machine.name }}\n".write(
            toFile: directory.file("templates/ipxe/unclosed.tmpl"), atomically: true, encoding: .utf8)
        try "#!ipxe\necho {{ params.no-such-param }}\n".write(toFile: directory.file("templates/ipxe/undefined.tmpl"), atomically: true, encoding: .utf8)
        try """
            name: broken
            architectures:
              amd64: {kernel: k/linux}
            templates:
              - {name: ipxe, path: "boot/{{ machine.mac }}.ipxe", template: ipxe/unclosed.tmpl}
              - {name: answers, path: "answers/{{ machine.id }}.cfg", template: ipxe/undefined.tmpl}
              - {name: missing, path: "machines/{{ machine.id }}/missing.cfg", template: ipxe/missing.tmpl}
            requiredParams: [root-secret]
            """.write(toFile: directory.file("bootenvs/broken.yaml"), atomically: true, encoding: .utf8)
        try "name: typo\ndescriptoin: x\n".write(toFile: directory.file("bootenvs/typo.yaml"), atomically: true, encoding: .utf8)

        let report = BootEnvCheck(root: URL(fileURLWithPath: directory.path)).run()
        #expect(report.checked.map(\.name) == ["broken"])
        let messages = report.problems.map(\.description)
        for expected in [
            "bootenvs/broken.yaml: architectures.amd64: names no initrds",
            "bootenvs/broken.yaml: param 'root-secret' is listed but not defined (templates/content)",
            "bootenvs/broken.yaml: templates.answers (ipxe/undefined.tmpl): path 'answers/{{ machine.id }}.cfg' is never served; declared files live under machines/{{ machine.id }}/",
            "bootenvs/broken.yaml: templates.answers (ipxe/undefined.tmpl): line 2: unknown variable 'params.no-such-param' (no such param is defined)",
            "bootenvs/typo.yaml:2: unknown field 'descriptoin'",
        ] {
            #expect(messages.contains { $0.hasPrefix(expected) }, "no '\(expected)' in \(messages)")
        }
        #expect(messages.contains { $0.hasPrefix("bootenvs/broken.yaml: templates.missing (ipxe/missing.tmpl): no such template") }, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("bootenvs/broken.yaml: templates.ipxe (ipxe/unclosed.tmpl): ") && $0.contains("endif") }, "\(messages)")
    }
}
