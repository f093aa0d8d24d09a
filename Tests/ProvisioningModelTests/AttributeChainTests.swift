import ApplianceTesting
import ProvisioningModel
import Testing

/// One row of the attribute-chain table: which layers set the param `p`, and what resolution must say.
struct ChainCase: Sendable, CustomTestStringConvertible {
    var label: String
    var machineValue: JSONValue? = nil
    var machineProfiles: [String] = []
    var profiles: [Profile] = []
    var stageProfile: Profile? = nil
    var global: Profile? = nil
    var paramDefault: JSONValue? = nil
    var value: JSONValue?
    var source: ParamSource

    var testDescription: String { label }

    static func profile(_ name: String, _ value: JSONValue? = nil) -> Profile {
        Profile(name: name, params: value.map { ["p": $0] } ?? ["other": "x"])
    }

    static let all: [ChainCase] = [
        ChainCase(
            label: "machine beats everything", machineValue: 1, machineProfiles: ["a"], profiles: [profile("a", 2)],
            stageProfile: profile("stage", 3), global: profile("global", 4), paramDefault: 5, value: 1, source: .machine),
        ChainCase(
            label: "first profile wins over second", machineProfiles: ["a", "b"], profiles: [profile("a", 2), profile("b", 3)],
            value: 2, source: .profile("a")),
        ChainCase(
            label: "the machine's order decides, not the order profiles are passed in", machineProfiles: ["a", "b"],
            profiles: [profile("b", 3), profile("a", 2)], value: 2, source: .profile("a")),
        ChainCase(
            label: "a profile missing from the list is skipped", machineProfiles: ["gone", "b"], profiles: [profile("b", 3)],
            global: profile("global", 4), value: 3, source: .profile("b")),
        ChainCase(
            label: "a profile that does not set the param is skipped", machineProfiles: ["a", "b"],
            profiles: [profile("a"), profile("b", 3)], value: 3, source: .profile("b")),
        ChainCase(
            label: "a profile the machine does not list is ignored", profiles: [profile("a", 2)], paramDefault: 5,
            value: 5, source: .paramDefault),
        ChainCase(
            label: "machine profiles beat the stage profile", machineProfiles: ["a"], profiles: [profile("a", 2)],
            stageProfile: profile("stage", 3), value: 2, source: .profile("a")),
        ChainCase(
            label: "stage profile beats global", machineProfiles: ["a"], profiles: [profile("a")],
            stageProfile: profile("install", 3), global: profile("global", 4), paramDefault: 5, value: 3,
            source: .stageProfile("install")),
        ChainCase(
            label: "global beats the param default", stageProfile: profile("install"), global: profile("global", 4),
            paramDefault: 5, value: 4, source: .global),
        ChainCase(
            label: "param default when no layer sets it", machineProfiles: ["a"], profiles: [profile("a")],
            global: profile("global"), paramDefault: ["x": 1], value: ["x": 1], source: .paramDefault),
        ChainCase(label: "unset when nothing sets it and there is no default", value: nil, source: .unset),
    ]
}

@Suite("Attribute chain")
struct AttributeChainTests {
    @Test("resolves a param from the first layer that sets it, and names the layer", arguments: ChainCase.all)
    func resolves(_ row: ChainCase) {
        var machine = Fixtures.machine()
        machine.profiles = row.machineProfiles
        if let value = row.machineValue { machine.params["p"] = value }
        let chain = AttributeChain(machine: machine, profiles: row.profiles, stageProfile: row.stageProfile, global: row.global)
        let definition = Param(name: "p", schema: ParamSchema(type: .any), default: row.paramDefault)
        let resolved = chain.resolve("p", definition: definition)
        #expect(resolved.name == "p")
        #expect(resolved.value == row.value)
        #expect(resolved.source == row.source)
    }

    @Test("without a param definition there is no default to fall back to")
    func noDefinition() {
        let chain = AttributeChain(machine: Fixtures.machine(), profiles: [])
        #expect(chain.resolve("p", definition: nil) == ResolvedParam(name: "p", value: nil, source: .unset))
    }
}
