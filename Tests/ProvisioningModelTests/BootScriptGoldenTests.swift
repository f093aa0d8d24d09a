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

    @Test("each shipped boot environment renders its iPXE script exactly as the golden text", arguments: cases)
    func golden(_ testCase: Case) throws {
        let bootEnv = try #require(Self.content.objects.compactMap { $0.object as? BootEnv }.first { $0.name == testCase.bootEnv })
        let definitions = Self.content.objects.compactMap { $0.object as? Param }
        let chain = AttributeChain(machine: testCase.machine ?? Self.machine(bootEnv: testCase.bootEnv), profiles: [])
        var params: [String: JSONValue] = [:]
        for definition in definitions {
            if let value = chain.resolve(definition.name, definition: definition).value { params[definition.name] = value }
        }
        for (name, value) in testCase.machine?.params ?? [:] { params[name] = value }
        let renderer = BootScriptRenderer(templatesDirectory: AnvilServer.repositoryRoot + "/templates")
        let script = try renderer.ipxeScript(
            for: RenderSubject(mac: Self.mac, machine: testCase.machine, bootEnv: bootEnv, params: params, bootURL: "http://10.0.0.1:8080"))
        let path = Self.goldenDirectory + "/\(testCase.name).ipxe"
        if ProcessInfo.processInfo.environment["ANVIL_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: Self.goldenDirectory, withIntermediateDirectories: true)
            try script.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let golden = try #require(try? String(contentsOfFile: path, encoding: .utf8), "no golden \(path): run with ANVIL_UPDATE_GOLDEN=1")
        #expect(script == golden)
        #expect(script.hasPrefix("#!ipxe\n"))
    }
}
