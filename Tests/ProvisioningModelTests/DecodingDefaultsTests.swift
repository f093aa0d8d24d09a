import Foundation
import NetworkPrimitives
import ProvisioningModel
import Testing

private func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(text.utf8))
}

@Suite("Decoding defaults")
struct DecodingDefaultsTests {
    @Test("a machine with only a name gets the documented defaults")
    func machineDefaults() throws {
        let machine = try decode(Machine.self, #"{"name":"n1"}"#)
        #expect(machine.name == "n1")
        #expect(machine.state == .discovered)
        #expect(machine.bootEnv == "discovery")
        #expect(machine.architecture == .amd64)
        #expect(machine.description == "")
        #expect(machine.workflow == nil)
        #expect(machine.profiles.isEmpty)
        #expect(machine.params.isEmpty)
        #expect(machine.interfaces.isEmpty)
        #expect(machine.bmc == nil)
    }

    @Test("two machines decoded without an id get different ids")
    func machineIDGenerated() throws {
        #expect(try decode(Machine.self, #"{"name":"n1"}"#).id != decode(Machine.self, #"{"name":"n1"}"#).id)
    }

    @Test("a machine without a name is refused")
    func machineWithoutName() {
        let error = #expect(throws: DecodingError.self) { _ = try decode(Machine.self, #"{"state":"ready"}"#) }
        guard case .keyNotFound(let key, _)? = error else {
            Issue.record("expected keyNotFound, got \(String(describing: error))")
            return
        }
        #expect(key.stringValue == "name")
    }

    @Test("a machine with an unknown state is refused")
    func machineUnknownState() {
        #expect(throws: DecodingError.self) { _ = try decode(Machine.self, #"{"name":"n1","state":"flying"}"#) }
    }

    @Test("an interface is not the boot interface unless it says so, and its MAC may use any spelling")
    func interfaceDefaults() throws {
        let machine = try decode(Machine.self, #"{"name":"n1","interfaces":[{"mac":"5254.0012.3456"}]}"#)
        #expect(machine.interfaces == [NetworkInterface(mac: MACAddress(0x52, 0x54, 0, 0x12, 0x34, 0x56), name: nil, boot: false)])
    }

    @Test("a machine survives an encode/decode round trip")
    func machineRoundTrip() throws {
        var machine = Machine(name: "n1", state: .ready, architecture: .arm64, profiles: ["a"], params: ["k": 1])
        machine.bmc = BMCReference(address: "10.0.0.5")
        let data = try JSONEncoder().encode(machine)
        #expect(try JSONDecoder().decode(Machine.self, from: data) == machine)
    }

    @Test("a subnet with only name and network defaults to full mode and one-hour leases")
    func subnetDefaults() throws {
        let subnet = try decode(Subnet.self, #"{"name":"lab","network":"10.0.0.0/24"}"#)
        #expect(subnet.mode == .full)
        #expect(subnet.leaseSeconds == 3600)
        #expect(subnet.dnsServers.isEmpty)
    }

    @Test("a param without a schema accepts any value")
    func paramDefaults() throws {
        let param = try decode(Param.self, #"{"name":"p"}"#)
        #expect(param.schema == ParamSchema(type: .any))
        #expect(param.default == nil)
    }
}
