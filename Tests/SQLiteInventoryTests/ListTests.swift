import ApplianceTesting
import Foundation
import NetworkPrimitives
import ProvisioningModel
import SQLiteInventory
import Testing

/// Four machines that differ in every filterable field.
private func createFilterFixtures(in store: SQLiteInventory) async throws {
    _ = try await store.create(Profile(name: "rack1"), actor: "test")
    _ = try await store.create(Profile(name: "rack2"), actor: "test")
    var node1 = Fixtures.machine(1, state: .discovered)
    node1.architecture = .amd64
    var node2 = Fixtures.machine(2, state: .ready, bootEnv: "local")
    node2.architecture = .arm64
    node2.profiles = ["rack1"]
    var node3 = Fixtures.machine(3, state: .ready)
    node3.profiles = ["rack2", "rack1"]
    node3.interfaces = [NetworkInterface(mac: MACAddress(0x52, 0x54, 0x00, 0x00, 0xab, 0xcd), boot: true),
                        NetworkInterface(mac: Fixtures.mac(33))]
    var node4 = Fixtures.machine(4, state: .deployed, bootEnv: "local")
    node4.architecture = .arm64
    node4.profiles = ["rack2"]
    for machine in [node1, node2, node3, node4] { _ = try await store.create(machine, actor: "test") }
}

@Suite("Listing")
struct ListTests {
    @Test("filters machines", arguments: [
        ([("state", "ready")], ["node2", "node3"]),
        ([("state", "retired")], []),
        ([("arch", "arm64")], ["node2", "node4"]),
        ([("arch", "amd64")], ["node1", "node3"]),
        ([("bootenv", "local")], ["node2", "node4"]),
        ([("profile", "rack1")], ["node2", "node3"]),
        ([("profile", "rack2")], ["node3", "node4"]),
        ([("name", "node4")], ["node4"]),
        ([("state", "ready"), ("arch", "amd64")], ["node3"]),
        ([("mac", "52:54:00:00:ab:cd")], ["node3"]),
        ([("mac", "52-54-00-00-AB-CD")], ["node3"]),
        ([("mac", "5254.0000.abcd")], ["node3"]),
        ([("mac", "52540000ABCD")], ["node3"]),
        ([("mac", "52:54:00:00:00:21")], ["node3"]),
        ([("mac", "52:54:00:00:00:99")], []),
    ] as [([(String, String)], [String])])
    func filters(_ filters: [(String, String)], _ expected: [String]) async throws {
        try await withStore { store, _ in
            try await createFilterFixtures(in: store)
            let page = try await store.list(
                Machine.self, filters: filters.map { ListFilter(field: $0.0, value: $0.1) }, after: nil, limit: 100)
            #expect(page.items.map(\.object.name).sorted() == expected)
            #expect(page.nextCursor == nil)
        }
    }

    @Test("an unknown filter is invalid, naming the filter")
    func unknownFilter() async throws {
        try await withStore { store, _ in
            let error = await inventoryError {
                _ = try await store.list(Machine.self, filters: [ListFilter(field: "colour", value: "red")], after: nil, limit: 10)
            }
            #expect(error?.invalidFields == ["colour"])
        }
    }

    @Test("a MAC filter that is not a MAC is invalid on 'mac'")
    func badMACFilter() async throws {
        try await withStore { store, _ in
            let error = await inventoryError {
                _ = try await store.list(Machine.self, filters: [ListFilter(field: "mac", value: "nope")], after: nil, limit: 10)
            }
            #expect(error?.invalidFields == ["mac"])
        }
    }

    @Test("filters other kinds by their own fields")
    func filterReservations() async throws {
        try await withStore { store, _ in
            _ = try await store.create(Fixtures.subnet("lab"), actor: "test")
            var other = Fixtures.subnet("other")
            other.network = IPv4Network("10.98.0.0/24")!
            other.rangeStart = IPv4Address("10.98.0.100")
            other.rangeEnd = IPv4Address("10.98.0.200")
            other.router = nil
            _ = try await store.create(other, actor: "test")
            _ = try await store.create(Reservation(mac: Fixtures.mac(1), address: IPv4Address(10, 99, 0, 5), subnet: "lab"), actor: "test")
            _ = try await store.create(Reservation(mac: Fixtures.mac(2), address: IPv4Address(10, 98, 0, 5), subnet: "other"), actor: "test")
            let page = try await store.list(Reservation.self, filters: [ListFilter(field: "subnet", value: "other")], after: nil, limit: 10)
            #expect(page.items.map(\.object.mac) == [Fixtures.mac(2)])
        }
    }

    @Test("paging with limit 3 over 10 machines returns each exactly once, in key order")
    func pagination() async throws {
        try await withStore { store, _ in
            var keys: [String] = []
            for index in 1...10 { keys.append(try await store.create(Fixtures.machine(index), actor: "test").object.key) }
            var seen: [String] = []
            var pageSizes: [Int] = []
            var cursor: String?
            repeat {
                let page = try await store.list(Machine.self, filters: [], after: cursor, limit: 3)
                seen += page.items.map(\.object.key)
                pageSizes.append(page.items.count)
                cursor = page.nextCursor
            } while cursor != nil && pageSizes.count <= 10
            #expect(seen == keys.sorted())
            #expect(pageSizes == [3, 3, 3, 1])
        }
    }

    @Test("a page that ends exactly at the last object has no next cursor")
    func exactLastPage() async throws {
        try await withStore { store, _ in
            for index in 1...3 { _ = try await store.create(Fixtures.machine(index), actor: "test") }
            let page = try await store.list(Machine.self, filters: [], after: nil, limit: 3)
            #expect(page.items.count == 3)
            #expect(page.nextCursor == nil)
        }
    }

    @Test("paging combines with filters")
    func paginationWithFilter() async throws {
        try await withStore { store, _ in
            for index in 1...10 {
                _ = try await store.create(Fixtures.machine(index, state: index.isMultiple(of: 2) ? .ready : .discovered), actor: "test")
            }
            var names: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await store.list(Machine.self, filters: [ListFilter(field: "state", value: "ready")], after: cursor, limit: 2)
                names += page.items.map(\.object.name)
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages <= 10
            #expect(names.sorted() == ["node10", "node2", "node4", "node6", "node8"])
            #expect(Set(names).count == 5)
        }
    }

    @Test("machine(named:) finds a machine by name, nil when none has it")
    func machineNamed() async throws {
        try await withStore { store, _ in
            let machine = try await store.create(Fixtures.machine(5), actor: "test").object
            #expect(try await store.machine(named: "node5")?.object == machine)
            #expect(try await store.machine(named: "node6") == nil)
        }
    }
}
