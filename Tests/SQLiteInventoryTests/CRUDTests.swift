import ApplianceTesting
import Foundation
import NetworkPrimitives
import ProvisioningModel
import SQLiteInventory
import Testing

/// Create, fetch, replace twice and delete one object; checks revisions and the not-found afterwards.
private func exerciseCRUD<O: InventoryObject>(
    _ original: O, changed: O, in store: SQLiteInventory, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let created = try await store.create(original, actor: "test")
    #expect(created.object == original, sourceLocation: sourceLocation)
    #expect(created.meta.revision == 1, sourceLocation: sourceLocation)
    #expect(created.meta.origin == .user, sourceLocation: sourceLocation)

    let fetched = try await store.fetch(O.self, key: original.key)
    #expect(fetched.object == original, sourceLocation: sourceLocation)
    #expect(fetched.meta.revision == 1, sourceLocation: sourceLocation)

    let replaced = try await store.replace(changed, expectedRevision: 1, actor: "test")
    #expect(replaced.meta.revision == 2, sourceLocation: sourceLocation)
    #expect(try await store.fetch(O.self, key: original.key).object == changed, sourceLocation: sourceLocation)

    let again = try await store.replace(original, expectedRevision: nil, actor: "test")
    #expect(again.meta.revision == 3, sourceLocation: sourceLocation)
    #expect(try await store.fetch(O.self, key: original.key).meta.revision == 3, sourceLocation: sourceLocation)

    try await store.delete(O.self, key: original.key, expectedRevision: 3, actor: "test")
    let error = await inventoryError(sourceLocation: sourceLocation) { _ = try await store.fetch(O.self, key: original.key) }
    #expect(error == .notFound(what: O.kind.rawValue, key: original.key), sourceLocation: sourceLocation)
}

@Suite("Create, fetch, replace, delete")
struct CRUDTests {
    @Test("boot environments")
    func bootEnv() async throws {
        try await withStore(seeded: false) { store, _ in
            try await exerciseCRUD(
                BootEnv(name: "debian-12", architectures: ["amd64": BootEnvArchitecture(kernel: "vmlinuz")]),
                changed: BootEnv(name: "debian-12", description: "Debian 12 installer"), in: store)
        }
    }

    @Test("machines")
    func machine() async throws {
        try await withStore { store, _ in
            let machine = Fixtures.machine()
            var changed = machine
            changed.state = .ready
            changed.bootEnv = "local"
            changed.params = ["hostname": "n1", "ratio": 0.5]
            try await exerciseCRUD(machine, changed: changed, in: store)
        }
    }

    @Test("subnets")
    func subnet() async throws {
        try await withStore(seeded: false) { store, _ in
            var changed = Fixtures.subnet()
            changed.leaseSeconds = 600
            changed.dnsServers = [IPv4Address(10, 99, 0, 1)]
            try await exerciseCRUD(Fixtures.subnet(), changed: changed, in: store)
        }
    }

    @Test("reservations")
    func reservation() async throws {
        try await withStore(seeded: false) { store, _ in
            _ = try await store.create(Fixtures.subnet(), actor: "test")
            let reservation = Reservation(mac: Fixtures.mac(1), address: IPv4Address(10, 99, 0, 10), subnet: "lab")
            var changed = reservation
            changed.hostname = "node1"
            try await exerciseCRUD(reservation, changed: changed, in: store)
        }
    }

    @Test("params and profiles")
    func paramAndProfile() async throws {
        try await withStore(seeded: false) { store, _ in
            try await exerciseCRUD(
                Param(name: "console", schema: ParamSchema(type: .string)),
                changed: Param(name: "console", schema: ParamSchema(type: .string), default: "ttyS0"), in: store)
            try await exerciseCRUD(
                Profile(name: "rack1", params: ["console": "ttyS1"]),
                changed: Profile(name: "rack1", params: ["console": "tty0", "ntp": ["10.0.0.1"]]), in: store)
        }
    }

    @Test("tasks, stages and workflows")
    func workflowObjects() async throws {
        try await withStore { store, _ in
            let task = TaskDefinition(name: "wipe", templates: [TaskTemplate(name: "wipe", template: "wipe.sh.tmpl")])
            try await exerciseCRUD(task, changed: TaskDefinition(name: "wipe", description: "d", templates: task.templates), in: store)
            _ = try await store.create(task, actor: "test")
            try await exerciseCRUD(
                Stage(name: "wipe", bootEnv: "discovery", tasks: ["wipe"]),
                changed: Stage(name: "wipe", bootEnv: "local", tasks: []), in: store)
        }
    }

    @Test("leases and jobs, which only the appliance writes")
    func leaseAndJob() async throws {
        try await withStore { store, _ in
            // Whole seconds: the body stores dates in ISO 8601 without fractions.
            let time = Date(timeIntervalSince1970: 1_700_000_000)
            let lease = Lease(address: IPv4Address(10, 99, 0, 150), mac: Fixtures.mac(1), subnet: "lab", state: .offered, expiresAt: time)
            var bound = lease
            bound.state = .bound
            try await exerciseCRUD(lease, changed: bound, in: store)
            let job = Job(machine: ObjectID(), task: "wipe", createdAt: time)
            var running = job
            running.state = .running
            running.startedAt = time
            try await exerciseCRUD(job, changed: running, in: store)
        }
    }

    @Test("replace with a stale expectedRevision throws revisionMismatch and changes nothing")
    func staleReplace() async throws {
        try await withStore { store, _ in
            var machine = Fixtures.machine()
            _ = try await store.create(machine, actor: "test")
            machine.description = "second"
            _ = try await store.replace(machine, expectedRevision: 1, actor: "test")
            machine.description = "third"
            let error = await inventoryError { _ = try await store.replace(machine, expectedRevision: 1, actor: "test") }
            #expect(error == .revisionMismatch(key: machine.key, expected: 1, actual: 2))
            #expect(try await store.fetch(Machine.self, key: machine.key).object.description == "second")
        }
    }

    @Test("delete with a stale expectedRevision throws revisionMismatch and keeps the object")
    func staleDelete() async throws {
        try await withStore { store, _ in
            let bootEnv = BootEnv(name: "spare")
            _ = try await store.create(bootEnv, actor: "test")
            _ = try await store.replace(bootEnv, expectedRevision: 1, actor: "test")
            let error = await inventoryError { try await store.delete(BootEnv.self, key: "spare", expectedRevision: 1, actor: "test") }
            #expect(error == .revisionMismatch(key: "spare", expected: 1, actual: 2))
            #expect(try await store.fetch(BootEnv.self, key: "spare").meta.revision == 2)
        }
    }

    @Test("fetch of a missing key throws notFound", arguments: [ObjectKind.machine, .bootenv])
    func fetchMissing(_ kind: ObjectKind) async throws {
        try await withStore { store, _ in
            let key = kind == .machine ? ObjectID().description : "nothing"
            let error = await inventoryError {
                if kind == .machine { _ = try await store.fetch(Machine.self, key: key) }
                else { _ = try await store.fetch(BootEnv.self, key: key) }
            }
            #expect(error == .notFound(what: kind.rawValue, key: key))
        }
    }

    @Test("replace and delete of a missing key throw notFound")
    func writeMissing() async throws {
        try await withStore { store, _ in
            let machine = Fixtures.machine()
            #expect(await inventoryError { _ = try await store.replace(machine, expectedRevision: nil, actor: "t") }?.isNotFound == true)
            #expect(await inventoryError { try await store.delete(Machine.self, key: machine.key, expectedRevision: nil, actor: "t") }?.isNotFound == true)
        }
    }

    @Test("creating an object whose key exists throws alreadyExists on the key field")
    func createDuplicateKey() async throws {
        try await withStore { store, _ in
            let error = await inventoryError { _ = try await store.create(BootEnv(name: "local"), actor: "test") }
            #expect(error?.alreadyExistsField == "name")
        }
    }

    @Test("an object invalid on its own is refused with every problem")
    func invalidObjectRefused() async throws {
        try await withStore { store, _ in
            var machine = Fixtures.machine()
            machine.name = "bad name"
            machine.interfaces.append(NetworkInterface(mac: Fixtures.mac(1)))
            let error = await inventoryError { _ = try await store.create(machine, actor: "test") }
            #expect(error?.invalidFields == ["name", "interfaces[1].mac"])
            let stored = try await store.count(.machine)
            #expect(stored == 0)
        }
    }
}
