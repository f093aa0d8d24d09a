import ApplianceTesting
import Foundation
import NetworkPrimitives
import ProvisioningModel
import Testing

@Suite("Machine validation")
struct MachineValidationTests {
    @Test("a valid fixture machine has no problems")
    func validMachine() {
        #expect(Fixtures.machine().validate().isEmpty)
    }

    @Test("reports every problem at once, each with its field")
    func accumulatesEveryProblem() {
        var machine = Fixtures.machine()
        machine.name = "-bad name"
        machine.interfaces = [
            NetworkInterface(mac: Fixtures.mac(1), name: "eth0", boot: true),
            NetworkInterface(mac: Fixtures.mac(1), name: "eth1", boot: true),
        ]
        let fields = machine.validate().map(\.field)
        #expect(fields == ["name", "interfaces[1].mac", "interfaces"])
    }

    @Test("checks names", arguments: [
        ("node-1", true), ("Node_1.lab", true), ("1node", true), (String(repeating: "a", count: 63), true),
        ("", false), ("-node", false), (".node", false), ("_node", false), ("node 1", false), ("node/1", false),
        ("nöde", false), (String(repeating: "a", count: 64), false),
    ])
    func names(_ name: String, _ valid: Bool) {
        var machine = Fixtures.machine()
        machine.name = name
        #expect(machine.validate().map(\.field) == (valid ? [] : ["name"]))
    }

    @Test("reports references, BMC and facts problems under their own fields")
    func nestedFields() {
        var machine = Fixtures.machine()
        machine.bootEnv = ""
        machine.profiles = ["ok", "not ok"]
        machine.bmc = BMCReference(address: "", port: 0)
        machine.facts.systemUUID = "not-a-uuid"
        machine.facts.disks = [DiskFacts(name: "", sizeBytes: -1)]
        let fields = Set(machine.validate().map(\.field))
        #expect(fields == [
            "bootEnv", "profiles[1]", "bmc.address", "bmc.port", "facts.systemUUID", "facts.disks[0].name",
            "facts.disks[0].sizeBytes",
        ])
    }
}

private let labNetwork = IPv4Network("10.99.0.0/24")!

@Suite("Subnet validation")
struct SubnetValidationTests {
    @Test("a valid fixture subnet has no problems")
    func validSubnet() {
        #expect(Fixtures.subnet().validate().isEmpty)
    }

    @Test("reports each broken rule with its field", arguments: [
        ("range outside the network",
         Subnet(name: "lab", network: labNetwork, rangeStart: IPv4Address("10.98.0.10"), rangeEnd: IPv4Address("10.98.0.20")),
         ["rangeStart", "rangeEnd"]),
        ("range end before start",
         Subnet(name: "lab", network: labNetwork, rangeStart: IPv4Address("10.99.0.200"), rangeEnd: IPv4Address("10.99.0.100")),
         ["rangeEnd"]),
        ("range includes the network address",
         Subnet(name: "lab", network: labNetwork, rangeStart: IPv4Address("10.99.0.0"), rangeEnd: IPv4Address("10.99.0.10")),
         ["rangeStart"]),
        ("full mode without a range", Subnet(name: "lab", network: labNetwork), ["rangeStart"]),
        ("proxy mode with a range",
         Subnet(name: "lab", mode: .proxy, network: labNetwork, rangeStart: IPv4Address("10.99.0.100"), rangeEnd: IPv4Address("10.99.0.200")),
         ["rangeStart"]),
        ("proxy mode without a range", Subnet(name: "lab", mode: .proxy, network: labNetwork), []),
        ("lease shorter than a minute",
         Subnet(name: "lab", network: labNetwork, rangeStart: IPv4Address("10.99.0.100"), rangeEnd: IPv4Address("10.99.0.200"), leaseSeconds: 59),
         ["leaseSeconds"]),
        ("lease of exactly a minute",
         Subnet(name: "lab", network: labNetwork, rangeStart: IPv4Address("10.99.0.100"), rangeEnd: IPv4Address("10.99.0.200"), leaseSeconds: 60),
         []),
        ("router outside the network",
         Subnet(name: "lab", mode: .proxy, network: labNetwork, router: IPv4Address("10.1.0.1")),
         ["router"]),
    ] as [(String, Subnet, [String])])
    func brokenRule(_ label: String, _ subnet: Subnet, _ fields: [String]) {
        #expect(subnet.validate().map(\.field) == fields, "\(label)")
    }

    @Test("reports every problem of one subnet together")
    func accumulatesEveryProblem() {
        let subnet = Subnet(
            name: "bad name", mode: .proxy, network: labNetwork, rangeStart: IPv4Address("10.99.0.100"),
            rangeEnd: IPv4Address("10.99.0.200"), router: IPv4Address("192.168.0.1"), leaseSeconds: 10)
        #expect(Set(subnet.validate().map(\.field)) == ["name", "leaseSeconds", "rangeStart", "router"])
    }
}

@Suite("BootEnv validation")
struct BootEnvValidationTests {
    static let goodSHA = String(repeating: "ab", count: 32)

    @Test("a boot environment with known architectures and a good source has no problems")
    func valid() {
        let env = BootEnv(
            name: "debian-12", architectures: ["amd64": BootEnvArchitecture(kernel: "vmlinuz"), "arm64": BootEnvArchitecture()],
            sources: [BootEnvSource(url: "https://deb.example/netboot.tar.gz", sha256: Self.goodSHA, extract: ["./linux": "debian-12/linux"])])
        #expect(env.validate().isEmpty)
    }

    @Test("reports an unknown architecture key and a bad sha256 together")
    func badArchAndSHA() {
        let env = BootEnv(
            name: "debian-12", architectures: ["x86_64": BootEnvArchitecture(), "amd64": BootEnvArchitecture()],
            sources: [BootEnvSource(url: "https://deb.example/a", sha256: Self.goodSHA, file: "a"),
                      BootEnvSource(url: "https://deb.example/b", sha256: "not-a-digest", file: "b")])
        #expect(env.validate().map(\.field) == ["architectures.x86_64", "sources[1].sha256"])
    }

    @Test("rejects bad digests", arguments: [
        String(repeating: "a", count: 63), String(repeating: "a", count: 65), String(repeating: "g", count: 64), "",
        String(repeating: "\u{FF41}", count: 64),  // fullwidth 'ａ': a hex digit to Unicode, never in a digest
    ])
    func badDigest(_ digest: String) {
        let env = BootEnv(name: "e", sources: [BootEnvSource(url: "https://x/y", sha256: digest, file: "y")])
        #expect(env.validate().map(\.field) == ["sources[0].sha256"])
    }

    @Test("'unknown' is not an architecture a boot environment can serve")
    func unknownArch() {
        let env = BootEnv(name: "e", architectures: ["unknown": BootEnvArchitecture()])
        #expect(env.validate().map(\.field) == ["architectures.unknown"])
    }

    @Test("reports template paths rendered twice or escaping with '..'")
    func templatePaths() {
        let env = BootEnv(name: "e", templates: [
            BootEnvTemplate(name: "a", path: "preseed.cfg", template: "a.tmpl"),
            BootEnvTemplate(name: "b", path: "preseed.cfg", template: "b.tmpl"),
            BootEnvTemplate(name: "c", path: "../etc/passwd", template: "c.tmpl"),
        ])
        #expect(env.validate().map(\.field) == ["templates[1].path", "templates[2].path"])
    }
}

@Suite("Param and ParamSchema validation")
struct ParamValidationTests {
    @Test("a default that breaks the schema is reported on field 'default'", arguments: [
        Param(name: "console", schema: ParamSchema(type: .string, enum: ["ttyS0", "tty0"]), default: "ttyS1"),
        Param(name: "port", schema: ParamSchema(type: .integer), default: "22"),
        Param(name: "disks", schema: ParamSchema(type: .integer, minimum: 1), default: 0),
    ])
    func badDefault(_ param: Param) {
        #expect(param.validate().map(\.field) == ["default"])
    }

    @Test("a default that fits the schema is fine")
    func goodDefault() {
        #expect(Param(name: "console", schema: ParamSchema(type: .string, enum: ["ttyS0", "tty0"]), default: "tty0").validate().isEmpty)
    }

    @Test("problems with the schema itself are reported under 'schema'")
    func badSchema() {
        let param = Param(name: "p", schema: ParamSchema(type: .integer, enum: ["one"], minimum: 5, maximum: 1, pattern: "(["))
        #expect(Set(param.validate().map(\.field)) == ["schema.pattern", "schema.maximum", "schema.enum[0]"])
    }

    @Test("checks a value against the schema", arguments: [
        ("string accepts a string", ParamSchema(type: .string), JSONValue.string("x"), [String]()),
        ("string rejects an integer", ParamSchema(type: .string), .integer(1), ["v"]),
        ("integer rejects a fractional number", ParamSchema(type: .integer), .number(1.5), ["v"]),
        ("number accepts an integer", ParamSchema(type: .number), .integer(2), []),
        ("boolean rejects the string 'true'", ParamSchema(type: .boolean), .string("true"), ["v"]),
        ("object rejects an array", ParamSchema(type: .object), .array([]), ["v"]),
        ("any accepts null", ParamSchema(type: .any), .null, []),
        ("enum accepts a listed value", ParamSchema(type: .string, enum: ["a", "b"]), .string("b"), []),
        ("enum rejects an unlisted value", ParamSchema(type: .string, enum: ["a", "b"]), .string("c"), ["v"]),
        ("minimum is inclusive", ParamSchema(type: .integer, minimum: 1), .integer(1), []),
        ("below minimum", ParamSchema(type: .integer, minimum: 1), .integer(0), ["v"]),
        ("maximum is inclusive", ParamSchema(type: .number, maximum: 2.5), .number(2.5), []),
        ("above maximum", ParamSchema(type: .number, maximum: 2.5), .number(2.6), ["v"]),
        ("enum and maximum both broken", ParamSchema(type: .integer, enum: [1, 2, 3], maximum: 2), .integer(5), ["v", "v"]),
        ("pattern matches the whole string", ParamSchema(type: .string, pattern: "[a-z]+"), .string("abc"), []),
        ("pattern rejects a partial match", ParamSchema(type: .string, pattern: "[a-z]+"), .string("abc1"), ["v"]),
        ("array items checked one by one", ParamSchema(type: .array, items: ParamSchema(type: .integer)),
         .array([1, "x", 3, "y"]), ["v[1]", "v[3]"]),
        ("array item bounds", ParamSchema(type: .array, items: ParamSchema(type: .integer, maximum: 10)),
         .array([5, 50]), ["v[1]"]),
        ("nested arrays", ParamSchema(type: .array, items: ParamSchema(type: .array, items: ParamSchema(type: .string))),
         .array([["a"], ["b", 2]]), ["v[1][1]"]),
    ] as [(String, ParamSchema, JSONValue, [String])])
    func schemaProblems(_ label: String, _ schema: ParamSchema, _ value: JSONValue, _ fields: [String]) {
        #expect(schema.problems(with: value, field: "v").map(\.field) == fields, "\(label)")
    }
}

@Suite("Other objects' validation")
struct OtherValidationTests {
    @Test("a task needs a template, and file paths must be absolute")
    func task() {
        #expect(TaskDefinition(name: "t").validate().map(\.field) == ["templates"])
        let task = TaskDefinition(name: "t", templates: [TaskTemplate(name: "f", template: "f.tmpl", path: "etc/motd")])
        #expect(task.validate().map(\.field) == ["templates[0].path"])
    }

    @Test("a workflow needs at least one stage")
    func workflow() {
        #expect(Workflow(name: "w", stages: []).validate().map(\.field) == ["stages"])
        #expect(Workflow(name: "w", stages: ["install"]).validate().isEmpty)
    }

    @Test("a job cannot end before it starts")
    func job() {
        let start = Date(timeIntervalSince1970: 1_000)
        let job = Job(machine: ObjectID(), task: "t", createdAt: start, startedAt: start, endedAt: start.addingTimeInterval(-1))
        #expect(job.validate().map(\.field) == ["endedAt"])
    }
}
