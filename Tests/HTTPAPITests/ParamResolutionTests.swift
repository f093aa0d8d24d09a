import ApplianceTesting
import Foundation
import HTTPTypes
import ProvisioningModel
import SQLiteInventory
import Testing

/// Which layers of the attribute chain set `ntp-server`, and what resolution must answer.
struct ResolutionCase: Sendable, CustomTestStringConvertible {
    enum Layer: String, Sendable, CaseIterable { case machine, profile, stageProfile, global }

    var layers: Set<Layer>
    var stage: Bool
    var layer: String
    var name: String
    var value: JSONValue

    var testDescription: String {
        "set on \(layers.map(\.rawValue).sorted()), stage \(stage) → \(layer)"
    }

    static let values: [Layer: JSONValue] = [
        .machine: "10.0.0.4", .profile: "10.0.0.3", .stageProfile: "10.0.0.2", .global: "10.0.0.1",
    ]

    static let all: [ResolutionCase] = [
        ResolutionCase(layers: [], stage: false, layer: "default", name: World.param, value: "pool.ntp.org"),
        ResolutionCase(layers: [], stage: true, layer: "default", name: World.param, value: "pool.ntp.org"),
        ResolutionCase(layers: [.global], stage: false, layer: "global", name: "global", value: "10.0.0.1"),
        ResolutionCase(layers: [.global, .stageProfile], stage: false, layer: "global", name: "global", value: "10.0.0.1"),
        ResolutionCase(layers: [.global, .stageProfile], stage: true, layer: "stage-profile", name: World.stageProfile, value: "10.0.0.2"),
        ResolutionCase(layers: [.global, .stageProfile, .profile], stage: true, layer: "profile", name: World.rackProfile, value: "10.0.0.3"),
        ResolutionCase(layers: [.profile], stage: false, layer: "profile", name: World.rackProfile, value: "10.0.0.3"),
        ResolutionCase(layers: Set(Layer.allCases), stage: true, layer: "machine", name: World.machineName, value: "10.0.0.4"),
        ResolutionCase(layers: [.machine], stage: false, layer: "machine", name: World.machineName, value: "10.0.0.4"),
    ]
}

@Suite("Param resolution")
struct ParamResolutionTests {
    @Test("the first layer that sets a param wins, and the answer names it", arguments: ResolutionCase.all)
    func resolve(_ scenario: ResolutionCase) async throws {
        try await APITestHarness.withAPI { api in
            let values = ResolutionCase.values
            // The machine always carries the rack profile, so only the profile's params decide whether it sets the param.
            try #require(try await api.patch("/api/v1/machines/\(World.machineName)", ["profiles": [.string(World.rackProfile)]]).status == .ok)
            if scenario.layers.contains(.global) {
                try await api.create("profiles", ["name": "global", "params": [World.param: values[.global]!]])
            }
            if scenario.layers.contains(.stageProfile) {
                try #require(try await api.patch("/api/v1/profiles/\(World.stageProfile)", ["params": [World.param: values[.stageProfile]!]]).status == .ok)
            }
            if scenario.layers.contains(.profile) {
                try #require(try await api.patch("/api/v1/profiles/\(World.rackProfile)", ["params": [World.param: values[.profile]!]]).status == .ok)
            }
            if scenario.layers.contains(.machine) {
                try #require(try await api.patch("/api/v1/machines/\(World.machineName)", ["params": [World.param: values[.machine]!]]).status == .ok)
            }

            let query = "machine=\(World.machineName)" + (scenario.stage ? "&stage=\(World.stage)" : "")
            let answer = try await api.get("/api/v1/params/\(World.param)/resolve?\(query)")
            #expect(answer.status == .ok, "\(answer)")
            #expect(answer.json?["param"] == .string(World.param))
            #expect(answer.json?["machine"] == .string(World.machineID))
            #expect(answer.json?["value"] == scenario.value)
            #expect(answer.json?["source"]?["layer"] == .string(scenario.layer))
            #expect(answer.json?["source"]?["name"] == .string(scenario.name))
            #expect(answer.json?["defined"] == true)
        }
    }

    @Test("the machine can be named by id or by name")
    func machineByIDOrName() async throws {
        try await APITestHarness.withAPI { api in
            let byName = try await api.get("/api/v1/params/\(World.param)/resolve?machine=\(World.machineName)")
            let byID = try await api.get("/api/v1/params/\(World.param)/resolve?machine=\(World.machineID)")
            #expect(byName.status == .ok, "\(byName)")
            #expect(byName.json == byID.json)
        }
    }

    @Test("a param set on a profile but never defined resolves, marked undefined")
    func undefinedButSet() async throws {
        try await APITestHarness.withAPI { api in
            try await api.create("profiles", ["name": "global", "params": ["motd": "hello"]])
            let answer = try await api.get("/api/v1/params/motd/resolve?machine=\(World.machineName)")
            #expect(answer.status == .ok, "\(answer)")
            #expect(answer.json?["value"] == "hello")
            #expect(answer.json?["source"]?["layer"] == "global")
            #expect(answer.json?["defined"] == false)
        }
    }

    @Test("a defined param without a default and set nowhere resolves to unset")
    func definedButUnset() async throws {
        try await APITestHarness.withAPI { api in
            try await api.create("params", ["name": "root-password-hash", "schema": ["type": "string"]])
            let answer = try await api.get("/api/v1/params/root-password-hash/resolve?machine=\(World.machineName)")
            #expect(answer.status == .ok, "\(answer)")
            #expect(answer.json?["value"] == nil)
            #expect(answer.json?["source"]?["layer"] == "unset")
            #expect(answer.json?["defined"] == true)
        }
    }

    @Test("resolution errors", arguments: [
        ("", HTTPResponse.Status.badRequest, "missing_query", "machine"),
        ("?stage=\(World.stage)", .badRequest, "missing_query", "machine"),
        ("?machine=nobody", .notFound, "not_found", "machine"),
    ])
    func errors(query: String, status: HTTPResponse.Status, code: String, field: String) async throws {
        try await APITestHarness.withAPI { api in
            try await api.get("/api/v1/params/\(World.param)/resolve\(query)").expectError(status, code, field: field)
        }
    }

    @Test("a param neither defined nor set is a 404")
    func neitherDefinedNorSet() async throws {
        try await APITestHarness.withAPI { api in
            try await api.get("/api/v1/params/never-heard-of-it/resolve?machine=\(World.machineName)")
                .expectError(.notFound, "not_found", field: "name")
        }
    }
}
