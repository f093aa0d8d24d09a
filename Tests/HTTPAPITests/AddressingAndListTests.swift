import ApplianceTesting
import Foundation
import HTTPTypes
import NetworkPrimitives
import ProvisioningModel
import SQLiteInventory
import Testing

@Suite("Addressing objects and listing them")
struct AddressingAndListTests {
    /// The spellings of a MAC the API accepts in URLs and filters.
    static let reservationMACSpellings = ["52:54:00:00:00:99", "52:54:00:00:00:99".uppercased(), "52-54-00-00-00-99", "5254.0000.0099", "525400000099"]
    static let machineMACSpellings = ["52:54:00:00:00:01", "52-54-00-00-00-01", "5254.0000.0001", "525400000001", "52:54:00:00:00:01".uppercased()]

    @Test("a machine is addressable by id (any case) and by name, for every item route")
    func machineByName() async throws {
        try await APITestHarness.withAPI { api in
            let byID = try await api.get("/api/v1/machines/\(World.machineID)")
            #expect(byID.status == .ok, "\(byID)")
            #expect(byID.json?["name"] == .string(World.machineName))
            let byUpperID = try await api.get("/api/v1/machines/\(World.machineID.uppercased())")
            #expect(byUpperID.json?["id"] == .string(World.machineID))
            let byName = try await api.get("/api/v1/machines/\(World.machineName)")
            #expect(byName.status == .ok, "\(byName)")
            #expect(byName.json?.removing("meta") == byID.json?.removing("meta"))
            #expect(byName.etag == byID.etag)

            var replacement = try #require(byName.json?.removing("meta", "id").objectValue)
            replacement["description"] = "rack 4"
            let replaced = try await api.put("/api/v1/machines/\(World.machineName)", .object(replacement), ifMatch: byName.etag)
            #expect(replaced.status == .ok, "\(replaced)")
            #expect(replaced.json?["id"] == .string(World.machineID))

            let patched = try await api.patch("/api/v1/machines/\(World.machineName)", ["state": "ready"])
            #expect(patched.status == .ok, "\(patched)")
            #expect(patched.json?["state"] == "ready")
            #expect(patched.json?["description"] == "rack 4")

            try await api.get("/api/v1/machines/no-such-machine").expectError(.notFound, "not_found")
            try await api.get("/api/v1/machines/\(World.unknownID)").expectError(.notFound, "not_found")

            #expect(try await api.delete("/api/v1/machines/\(World.machineName)").status == .noContent)
            try await api.get("/api/v1/machines/\(World.machineID)").expectError(.notFound, "not_found")
        }
    }

    @Test("a reservation is addressable by its MAC in any spelling", arguments: reservationMACSpellings)
    func reservationByMAC(spelling: String) async throws {
        try await APITestHarness.withAPI { api in
            let fetched = try await api.get("/api/v1/reservations/\(spelling)")
            #expect(fetched.status == .ok, "\(fetched)")
            #expect(fetched.json?["mac"] == .string(World.reservationMAC))
            #expect(fetched.json?["address"] == .string(World.reservationAddress))

            let patched = try await api.patch("/api/v1/reservations/\(spelling)", ["hostname": "web1"], ifMatch: fetched.etag)
            #expect(patched.status == .ok, "\(patched)")
            #expect(patched.json?["hostname"] == "web1")

            let replaced = try await api.put(
                "/api/v1/reservations/\(spelling)",
                ["address": .string(World.reservationAddress), "subnet": .string(World.subnet), "hostname": "web2"])
            #expect(replaced.status == .ok, "\(replaced)")
            #expect(replaced.json?["mac"] == .string(World.reservationMAC))

            #expect(try await api.delete("/api/v1/reservations/\(spelling)").status == .noContent)
            try await api.get("/api/v1/reservations/\(World.reservationMAC)").expectError(.notFound, "not_found")
        }
    }

    /// Three more machines, so each filter has something to leave out.
    private static func addMachines(_ api: APIClient) async throws {
        try await api.create("machines", [
            "name": "arm-ready", "state": "ready", "architecture": "arm64", "profiles": .array([.string(World.rackProfile)]),
            "interfaces": [["mac": "52:54:00:00:00:02", "boot": true]],
        ])
        try await api.create("machines", ["name": "amd-ready", "state": "ready", "interfaces": [["mac": "52:54:00:00:00:03"]]])
        try await api.create("machines", ["name": "arm-new", "architecture": "arm64", "profiles": .array([.string(World.rackProfile)])])
    }

    static let filterCases: [(query: String, names: [String])] = [
        ("state=ready", ["amd-ready", "arm-ready"]),
        ("state=discovered", ["arm-new", "node1"]),
        ("state=retired", []),
        ("arch=arm64", ["arm-new", "arm-ready"]),
        ("arch=amd64", ["amd-ready", "node1"]),
        ("profile=rack1", ["arm-new", "arm-ready"]),
        ("state=ready&arch=arm64", ["arm-ready"]),
        ("name=node1", ["node1"]),
        ("bootenv=discovery", ["amd-ready", "arm-new", "arm-ready", "node1"]),
    ] + machineMACSpellings.map { ("mac=\($0)", ["node1"]) } + [("mac=5254.0000.0003", ["amd-ready"])]

    @Test("machine list filters", arguments: filterCases)
    func machineFilters(query: String, names: [String]) async throws {
        try await APITestHarness.withAPI { api in
            try await Self.addMachines(api)
            let listed = try await api.get("/api/v1/machines?\(query)")
            #expect(listed.status == .ok, "\(listed)")
            #expect(listed.items.compactMap { $0["name"]?.stringValue }.sorted() == names)
        }
    }

    @Test("filters of other kinds: subnets by mode, reservations by subnet, jobs by state, leases by MAC in any spelling")
    func otherFilters() async throws {
        try await APITestHarness.withAPI { api in
            try await api.create("subnets", ["name": "proxied", "mode": "proxy", "network": "10.2.0.0/24"])
            #expect(try await api.get("/api/v1/subnets?mode=proxy").items.map { $0["name"] } == ["proxied"])
            #expect(try await api.get("/api/v1/reservations?subnet=lab").items.map { $0["mac"] } == [.string(World.reservationMAC)])
            #expect(try await api.get("/api/v1/reservations?subnet=proxied").items.isEmpty)

            _ = try await api.store.create(
                Job(machine: ObjectID(World.machineID)!, task: "wipe", state: .running, createdAt: Date()), actor: "engine")
            _ = try await api.store.create(
                Job(machine: ObjectID(World.machineID)!, task: "install", state: .finished, createdAt: Date()), actor: "engine")
            #expect(try await api.get("/api/v1/jobs?state=running").items.map { $0["task"] } == ["wipe"])
            #expect(try await api.get("/api/v1/jobs?state=created").items.map { $0["id"] } == [.string(World.jobID)])
            #expect(try await api.get("/api/v1/jobs?machine=\(World.machineID)&task=install").items.map { $0["state"] } == ["finished"])
            #expect(try await api.get("/api/v1/jobs?machine=\(World.machineID)").items.count == 3)
            for spelling in Self.machineMACSpellings {
                let leases = try await api.get("/api/v1/leases?mac=\(spelling)")
                #expect(leases.items.map { $0["address"] } == [.string(World.leaseAddress)], "\(spelling)")
            }
            #expect(try await api.get("/api/v1/leases?state=bound&subnet=lab").items.count == 1)
            #expect(try await api.get("/api/v1/leases?state=expired").items.isEmpty)
        }
    }

    @Test("pagination with limit and cursor returns every item exactly once, in key order")
    func pagination() async throws {
        try await APITestHarness.withAPI { api in
            for index in 1...8 { try await api.create("bootenvs", ["name": .string("be\(index)")]) }
            let everything = try await api.get("/api/v1/bootenvs?limit=1000")
            #expect(everything.json?["nextCursor"] == nil)
            let allNames = everything.items.compactMap { $0["name"]?.stringValue }
            #expect(allNames.count == 11)  // 8 + discovery, local, shipped
            #expect(allNames == allNames.sorted())

            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let query = "limit=3" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await api.get("/api/v1/bootenvs?\(query)")
                #expect(page.status == .ok, "\(page)")
                #expect(page.items.count <= 3)
                seen += page.items.compactMap { $0["name"]?.stringValue }
                cursor = page.json?["nextCursor"]?.stringValue
                pages += 1
            } while cursor != nil && pages < 20
            #expect(seen == allNames)
            #expect(pages == 4)

            // A filter and a cursor together.
            let first = try await api.get("/api/v1/machines?limit=1&state=discovered")
            #expect(first.items.count == 1)
            #expect(first.json?["nextCursor"] == nil)
        }
    }

    @Test("read-only kinds: jobs and leases can be listed and fetched")
    func readOnlyKinds() async throws {
        try await APITestHarness.withAPI { api in
            let jobs = try await api.get("/api/v1/jobs")
            #expect(jobs.status == .ok, "\(jobs)")
            #expect(jobs.items.map { $0["id"] } == [.string(World.jobID)])
            let leases = try await api.get("/api/v1/leases")
            #expect(leases.status == .ok, "\(leases)")
            #expect(leases.items.map { $0["address"] } == [.string(World.leaseAddress)])

            let job = try await api.get("/api/v1/jobs/\(World.jobID)")
            #expect(job.status == .ok, "\(job)")
            #expect(job.json?["task"] == .string(World.task))
            #expect(job.json?["machine"] == .string(World.machineID))
            #expect(job.etag == "\"1\"")
            #expect(try await api.get("/api/v1/jobs/\(World.jobID.uppercased())").status == .ok)

            let lease = try await api.get("/api/v1/leases/\(World.leaseAddress)")
            #expect(lease.status == .ok, "\(lease)")
            #expect(lease.json?["mac"] == .string(World.machineMAC.description))
            #expect(lease.json?["state"] == "bound")
        }
    }
}
