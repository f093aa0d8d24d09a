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
        Case(
            name: "discovery-console-param", bootEnv: "discovery",
            machine: machine(bootEnv: "discovery", params: ["kernel-console": "ttyS1,9600"])),
        Case(name: "local", bootEnv: "local", machine: machine(bootEnv: "local")),
        Case(
            name: "debian-12-install", bootEnv: "debian-12-install",
            machine: machine(bootEnv: "debian-12-install", params: ["root-password-hash": "$6$x$y"])),
        Case(
            name: "ubuntu-24.04-install", bootEnv: "ubuntu-24.04-install",
            machine: machine(bootEnv: "ubuntu-24.04-install", params: ["root-password-hash": "$6$x$y"])),
        Case(
            name: "rocky-9-install", bootEnv: "rocky-9-install",
            machine: machine(
                bootEnv: "rocky-9-install", params: ["root-password-hash": "$6$x$y", "kernel-console": "ttyS1,115200"])),
        Case(
            name: "image-deploy", bootEnv: "image-deploy",
            machine: machine(bootEnv: "image-deploy", params: ["image-url": "http://images.example/node.raw.xz"])),
        Case(name: "wipe", bootEnv: "wipe", machine: machine(bootEnv: "wipe")),
    ]

    /// A declared file (not the iPXE script) rendered for a fixture machine with a token.
    struct FileCase: Sendable, CustomTestStringConvertible {
        var golden: String
        var bootEnv: String
        var file: String
        var path: String
        var params: [String: JSONValue]
        var testDescription: String { golden }
    }

    static let keys: JSONValue = ["ssh-ed25519 AAAAC3Nza one@example", "ssh-ed25519 AAAAC3Nzb two@example"]
    static let fileCases: [FileCase] = [
        FileCase(
            golden: "ubuntu-24.04-install.user-data", bootEnv: "ubuntu-24.04-install", file: "user-data", path: "user-data",
            params: [
                "root-password-hash": "$6$x$y", "install-disk": "/dev/nvme0n1", "ssh-authorized-keys": keys, "admin-user": "ops",
                "ubuntu-mirror": "http://mirror.lab.example/ubuntu", "timezone": "Europe/Berlin",
            ]),
        FileCase(
            golden: "ubuntu-24.04-install.user-data-defaults", bootEnv: "ubuntu-24.04-install", file: "user-data",
            path: "user-data",
            params: ["root-password-hash": "$6$x$y"]),
        FileCase(
            golden: "ubuntu-24.04-install.meta-data", bootEnv: "ubuntu-24.04-install", file: "meta-data", path: "meta-data",
            params: ["root-password-hash": "$6$x$y"]),
        FileCase(
            golden: "ubuntu-24.04-install.vendor-data", bootEnv: "ubuntu-24.04-install", file: "vendor-data", path: "vendor-data",
            params: ["root-password-hash": "$6$x$y"]),
        FileCase(
            golden: "rocky-9-install.kickstart.cfg", bootEnv: "rocky-9-install", file: "kickstart", path: "kickstart.cfg",
            params: [
                "root-password-hash": "$6$x$y", "install-disk": "/dev/nvme0n1", "ssh-authorized-keys": keys,
                "ntp-servers": ["ntp1.lab.example", "ntp2.lab.example"], "locale": "de_DE.UTF-8", "keyboard-layout": "de",
                "rocky-repo-url": "http://mirror.lab.example/rocky/9.4/BaseOS/x86_64/os/",
            ]),
        FileCase(
            golden: "rocky-9-install.kickstart-defaults.cfg", bootEnv: "rocky-9-install", file: "kickstart",
            path: "kickstart.cfg",
            params: ["root-password-hash": "$6$x$y"]),
        FileCase(
            golden: "image-deploy.sh", bootEnv: "image-deploy", file: "task", path: "image-deploy.sh",
            params: [
                "image-url": "http://images.example/node.img", "image-format": "raw.xz", "install-disk": "/dev/nvme0n1",
                "image-sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ]),
        FileCase(
            golden: "image-deploy-minimal.sh", bootEnv: "image-deploy", file: "task", path: "image-deploy.sh",
            params: ["image-url": "http://images.example/node.raw.gz"]),
        FileCase(golden: "wipe-disks.sh", bootEnv: "wipe", file: "task", path: "wipe-disks.sh", params: [:]),
        FileCase(
            golden: "wipe-disks-full.sh", bootEnv: "wipe", file: "task", path: "wipe-disks.sh",
            params: ["wipe-mode": "full", "wipe-megabytes": 8, "wipe-disks": ["/dev/sda", "/dev/nvme0n1"]]),
    ]

    static let content = ContentLoader(root: URL(fileURLWithPath: AnvilServer.repositoryRoot)).load()
    static var goldenDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("GoldenScripts").path
    }

    @Test("shipped content loads without problems")
    func contentLoads() {
        #expect(Self.content.problems.isEmpty, "\(Self.content.problems)")
    }

    /// The subject as the boot plane builds it: the machine's params over the shipped defaults.
    static func subject(_ testCase: Case) throws -> RenderSubject {
        let bootEnv = try #require(
            Self.content.objects.compactMap { $0.object as? BootEnv }.first { $0.name == testCase.bootEnv })
        let definitions = Self.content.objects.compactMap { $0.object as? Param }
        let chain = AttributeChain(machine: testCase.machine ?? Self.machine(bootEnv: testCase.bootEnv), profiles: [])
        var params: [String: JSONValue] = [:]
        for definition in definitions {
            if let value = chain.resolve(definition.name, definition: definition).value { params[definition.name] = value }
        }
        for (name, value) in testCase.machine?.params ?? [:] { params[name] = value }
        return RenderSubject(
            mac: Self.mac, machine: testCase.machine, bootEnv: bootEnv, params: params, bootURL: "http://10.0.0.1:8080")
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
            try? String(contentsOfFile: path, encoding: .utf8), "no golden \(path): run with ANVIL_UPDATE_GOLDEN=1",
            sourceLocation: sourceLocation)
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

    @Test(
        "each new boot environment's declared files render for a fixture machine exactly as the golden text", arguments: fileCases
    )
    func declaredFileGolden(_ testCase: FileCase) throws {
        var subject = try Self.subject(
            Case(
                name: testCase.golden, bootEnv: testCase.bootEnv,
                machine: Self.machine(bootEnv: testCase.bootEnv, params: testCase.params)))
        subject.token = "m1.test-token"
        let file = try #require(subject.bootEnv.templates.first { $0.name == testCase.file })
        #expect(try Self.renderer.declaredPath(of: file, for: subject) == "machines/\(Self.fixedID)/\(testCase.path)")
        try Self.expectGolden(try Self.renderer.render(file, for: subject), named: testCase.golden)
    }

    /// iPXE scripts do not depend on the firmware (nothing in the context says BIOS or UEFI), so one
    /// golden covers both; what UEFI needs is `initrd=<name>` on the kernel line for the EFI stub.
    @Test("every kernel-booting iPXE script names its initrd on the kernel line (the EFI stub needs it)", arguments: cases)
    func initrdNamedForEFI(_ testCase: Case) throws {
        let subject = try Self.subject(testCase)
        guard let env = subject.bootEnv.architectures["amd64"], let initrd = env.initrds.first else { return }
        let script = try Self.renderer.ipxeScript(for: subject)
        let kernelLine = try #require(script.split(separator: "\n").first { $0.hasPrefix("kernel ") })
        #expect(kernelLine.contains(" initrd=\(URL(fileURLWithPath: initrd).lastPathComponent) "), "\(kernelLine)")
        #expect(script.contains("\ninitrd http://10.0.0.1:8080/files/\(initrd)\n"), "\(script)")
    }

    @Test(
        "a declared file is refused while a required param is unset, naming the param and the template",
        arguments: [
            ("debian-12-install", "preseed", "preseed/debian-12.preseed.tmpl", "root-password-hash"),
            ("ubuntu-24.04-install", "user-data", "autoinstall/ubuntu-24.04.user-data.tmpl", "root-password-hash"),
            ("rocky-9-install", "kickstart", "kickstart/rocky-9.ks.tmpl", "root-password-hash"),
            ("image-deploy", "task", "tasks/image-deploy.sh.tmpl", "image-url"),
            ("image-deploy", "ipxe", "ipxe/discovery.ipxe.tmpl", "image-url"),
        ])
    func requiredParamUnset(_ bootEnv: String, _ name: String, _ template: String, _ param: String) throws {
        let subject = try Self.subject(Case(name: "unset", bootEnv: bootEnv, machine: Self.machine(bootEnv: bootEnv)))
        let file = try #require(subject.bootEnv.templates.first { $0.name == name })
        let error = #expect(throws: RenderError.self) { try Self.renderer.render(file, for: subject) }
        #expect(error?.template == template)
        #expect(error?.message == "required param '\(param)' is not set (boot environment \(bootEnv) requires it)")
    }

    @Test("the installer boot environments name pinned upstream releases with well-formed checksums")
    func sources() throws {
        let bootEnvs = Self.content.objects.compactMap { $0.object as? BootEnv }
        for name in ["ubuntu-24.04-install", "rocky-9-install"] {
            let bootEnv = try #require(bootEnvs.first { $0.name == name })
            #expect(!bootEnv.sources.isEmpty, "\(name) has no sources")
            for source in bootEnv.sources {
                #expect(
                    source.url.hasPrefix("https://old-releases.ubuntu.com/releases/24.04.1/")
                        || source.url.hasPrefix("https://dl.rockylinux.org/vault/rocky/9.4/"),
                    "\(source.url) is not a pinned release")
            }
            #expect(bootEnv.validate().isEmpty, "\(bootEnv.validate())")
        }
    }

    @Test("a shipped content directory passes bootenvs check; each kind of mistake is reported against its file")
    func bootEnvCheck() throws {
        let shipped = BootEnvCheck(root: URL(fileURLWithPath: AnvilServer.repositoryRoot)).run()
        #expect(shipped.problems.isEmpty, "\(shipped.problems)")
        #expect(
            shipped.checked.map(\.name).sorted() == [
                "debian-12-install", "discovery", "image-deploy", "local", "rocky-9-install", "ubuntu-24.04-install", "wipe",
            ])

        let directory = try TemporaryDirectory(prefix: "anvil-bootenv-check")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("bootenvs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.file("templates/ipxe"), withIntermediateDirectories: true)
        try "#!ipxe\n{% if machine.name %}echo {{ machine.name }}\n".write(
            toFile: directory.file("templates/ipxe/unclosed.tmpl"), atomically: true, encoding: .utf8)
        try "#!ipxe\necho {{ params.no-such-param }}\n".write(
            toFile: directory.file("templates/ipxe/undefined.tmpl"), atomically: true, encoding: .utf8)
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
        #expect(
            messages.contains { $0.hasPrefix("bootenvs/broken.yaml: templates.missing (ipxe/missing.tmpl): no such template") },
            "\(messages)")
        #expect(
            messages.contains {
                $0.hasPrefix("bootenvs/broken.yaml: templates.ipxe (ipxe/unclosed.tmpl): ") && $0.contains("endif")
            }, "\(messages)")
    }
}
