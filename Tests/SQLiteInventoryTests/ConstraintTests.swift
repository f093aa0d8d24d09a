import ApplianceTesting
import Foundation
import NetworkPrimitives
import ProvisioningModel
import SQLiteInventory
import Testing

@Suite("Constraint violations become typed errors")
struct ConstraintTests {
    @Test("a second machine with a taken name is alreadyExists on 'name'")
    func duplicateMachineName() async throws {
        try await withStore { store, _ in
            _ = try await store.create(Fixtures.machine(1), actor: "test")
            var twin = Fixtures.machine(2)
            twin.name = "node1"
            let error = await inventoryError { _ = try await store.create(twin, actor: "test") }
            #expect(error?.alreadyExistsField == "name")
            #expect(try await store.count(.machine) == 1)
        }
    }

    @Test("renaming a machine to a taken name is alreadyExists on 'name'")
    func renameToTakenName() async throws {
        try await withStore { store, _ in
            _ = try await store.create(Fixtures.machine(1), actor: "test")
            var second = try await store.create(Fixtures.machine(2), actor: "test").object
            second.name = "node1"
            let error = await inventoryError { _ = try await store.replace(second, expectedRevision: nil, actor: "test") }
            #expect(error?.alreadyExistsField == "name")
        }
    }

    @Test("a MAC already on another machine is alreadyExists on 'interfaces[0].mac'")
    func macOnAnotherMachine() async throws {
        try await withStore { store, _ in
            _ = try await store.create(Fixtures.machine(1), actor: "test")
            var other = Fixtures.machine(2)
            other.interfaces = [NetworkInterface(mac: Fixtures.mac(1), boot: true)]
            let error = await inventoryError { _ = try await store.create(other, actor: "test") }
            #expect(error?.alreadyExistsField == "interfaces[0].mac")
            #expect(try await store.count(.machine) == 1)
        }
    }

    @Test("two reservations with the same address are alreadyExists on 'address'")
    func duplicateReservationAddress() async throws {
        try await withStore { store, _ in
            _ = try await store.create(Fixtures.subnet(), actor: "test")
            let address = IPv4Address(10, 99, 0, 50)
            _ = try await store.create(Reservation(mac: Fixtures.mac(1), address: address, subnet: "lab"), actor: "test")
            let error = await inventoryError {
                _ = try await store.create(Reservation(mac: Fixtures.mac(2), address: address, subnet: "lab"), actor: "test")
            }
            #expect(error?.alreadyExistsField == "address")
        }
    }

    @Test("a machine referencing a missing bootenv and profile is invalid on 'bootEnv' and 'profiles[0]'")
    func danglingReferences() async throws {
        try await withStore { store, _ in
            var machine = Fixtures.machine(bootEnv: "no-such-env")
            machine.profiles = ["no-such-profile"]
            let error = await inventoryError { _ = try await store.create(machine, actor: "test") }
            #expect(error?.invalidFields == ["bootEnv", "profiles[0]"])
        }
    }

    @Test("a machine referencing a missing workflow is invalid on 'workflow'")
    func danglingWorkflow() async throws {
        try await withStore { store, _ in
            var machine = Fixtures.machine()
            machine.workflow = "no-such-workflow"
            let error = await inventoryError { _ = try await store.create(machine, actor: "test") }
            #expect(error?.invalidFields == ["workflow"])
        }
    }

    @Test("deleting a bootenv a machine uses is inUse and names the machine")
    func deleteReferencedBootEnv() async throws {
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(bootEnv: "local"), actor: "test").object
            let error = await inventoryError { try await store.delete(BootEnv.self, key: "local", expectedRevision: nil, actor: "test") }
            guard case .inUse(let what, let key, let referrers)? = error else {
                Issue.record("expected inUse, got \(String(describing: error))")
                return
            }
            #expect(what == "bootenv")
            #expect(key == "local")
            #expect(referrers == ["machine '\(machine.key)' (bootEnv)"])
            #expect(try await store.count(.bootenv) == 2)
        }
    }

    @Test("a bootenv is deletable again once no machine uses it")
    func deleteAfterReferenceDropped() async throws {
        try await withStore { store, _ in
            var machine = try await store.create(Fixtures.machine(bootEnv: "local"), actor: "test").object
            machine.bootEnv = "discovery"
            _ = try await store.replace(machine, expectedRevision: nil, actor: "test")
            try await store.delete(BootEnv.self, key: "local", expectedRevision: nil, actor: "test")
            #expect(try await store.count(.bootenv) == 1)
        }
    }

    @Test("a profile value its Param's schema rejects is invalid on 'params.<name>'")
    func paramSchemaRejectsProfileValue() async throws {
        try await withStore { store, _ in
            _ = try await store.create(
                Param(name: "console", schema: ParamSchema(type: .string, enum: ["ttyS0", "tty0"])), actor: "test")
            _ = try await store.create(Param(name: "disks", schema: ParamSchema(type: .integer, minimum: 1)), actor: "test")
            let profile = Profile(name: "rack1", params: ["console": 5, "disks": 0, "undeclared": "anything"])
            let error = await inventoryError { _ = try await store.create(profile, actor: "test") }
            #expect(error?.invalidFields == ["params.console", "params.disks"])
        }
    }

    @Test("a machine param value its Param's schema rejects is invalid on 'params.<name>'")
    func paramSchemaRejectsMachineValue() async throws {
        try await withStore { store, _ in
            _ = try await store.create(Param(name: "console", schema: ParamSchema(type: .string)), actor: "test")
            var machine = Fixtures.machine()
            machine.params = ["console": true]
            let error = await inventoryError { _ = try await store.create(machine, actor: "test") }
            #expect(error?.invalidFields == ["params.console"])
        }
    }

    @Test("an illegal lifecycle move on replace is invalid on 'state'")
    func illegalLifecycleMove() async throws {
        try await withStore { store, _ in
            var machine = try await store.create(Fixtures.machine(state: .retired), actor: "test").object
            machine.state = .deployed
            let error = await inventoryError { _ = try await store.replace(machine, expectedRevision: 1, actor: "test") }
            #expect(error?.invalidFields == ["state"])
            #expect(try await store.fetch(Machine.self, key: machine.key).object.state == .retired)
        }
    }

    @Test("a legal lifecycle move on replace is stored")
    func legalLifecycleMove() async throws {
        try await withStore { store, _ in
            var machine = try await store.create(Fixtures.machine(state: .deployed), actor: "test").object
            machine.state = .reimageQueued
            _ = try await store.replace(machine, expectedRevision: 1, actor: "test")
            #expect(try await store.fetch(Machine.self, key: machine.key).object.state == .reimageQueued)
        }
    }

    @Test("a refused write appends no event")
    func refusedWriteLeavesNoEvent() async throws {
        try await withStore { store, _ in
            let before = try await store.latestEventCursor()
            _ = await inventoryError { _ = try await store.create(Fixtures.machine(bootEnv: "missing"), actor: "test") }
            #expect(try await store.latestEventCursor() == before)
        }
    }
}

@Suite("MAC ownership")
struct MACOwnershipTests {
    @Test("a MAC moves to another machine once the first machine no longer lists it")
    func macMovesAfterReplace() async throws {
        try await withStore { store, _ in
            var first = try await store.create(Fixtures.machine(1), actor: "test").object
            first.interfaces = [NetworkInterface(mac: Fixtures.mac(100), boot: true)]
            _ = try await store.replace(first, expectedRevision: 1, actor: "test")

            var second = Fixtures.machine(2)
            second.interfaces = [NetworkInterface(mac: Fixtures.mac(1), boot: true)]
            _ = try await store.create(second, actor: "test")

            let byOldMAC = try await store.list(Machine.self, filters: [ListFilter(field: "mac", value: Fixtures.mac(1).description)], after: nil, limit: 10)
            #expect(byOldMAC.items.map(\.object.name) == ["node2"])
            let byNewMAC = try await store.list(Machine.self, filters: [ListFilter(field: "mac", value: Fixtures.mac(100).description)], after: nil, limit: 10)
            #expect(byNewMAC.items.map(\.object.name) == ["node1"])
        }
    }

    @Test("a machine keeps its MAC across a replace that does not change it")
    func macKeptAcrossReplace() async throws {
        try await withStore { store, _ in
            var machine = try await store.create(Fixtures.machine(1), actor: "test").object
            machine.description = "changed"
            _ = try await store.replace(machine, expectedRevision: 1, actor: "test")
            var other = Fixtures.machine(2)
            other.interfaces = [NetworkInterface(mac: Fixtures.mac(1))]
            let error = await inventoryError { _ = try await store.create(other, actor: "test") }
            #expect(error?.alreadyExistsField == "interfaces[0].mac")
        }
    }

    @Test("deleting a machine frees its MACs")
    func deleteFreesMACs() async throws {
        try await withStore { store, _ in
            let first = try await store.create(Fixtures.machine(1), actor: "test").object
            try await store.delete(Machine.self, key: first.key, expectedRevision: nil, actor: "test")
            var second = Fixtures.machine(2)
            second.interfaces = [NetworkInterface(mac: Fixtures.mac(1), boot: true)]
            _ = try await store.create(second, actor: "test")
            let page = try await store.list(Machine.self, filters: [ListFilter(field: "mac", value: Fixtures.mac(1).description)], after: nil, limit: 10)
            #expect(page.items.map(\.object.name) == ["node2"])
        }
    }
}
