import ApplianceTesting
import Foundation
import Testing

/// Machines appear by themselves: two QEMU machines with their own SMBIOS identity, memory, disks
/// and MACs PXE-boot the discovery image from Anvil, and its agent calls home with those facts.
/// A reboot is no new machine; a pulled disk is a recorded hardware change.
@Suite("Discovery end to end", .serialized, .timeLimit(.minutes(20)))
struct DiscoveryEndToEndTests {
    struct Guest {
        var mac: String
        var tap: String
        var identity: SMBIOSIdentity
        var memoryMiB: Int
        var disksMiB: [Int]
    }

    static let first = Guest(
        mac: "52:54:00:d1:5c:01", tap: "tap0",
        identity: SMBIOSIdentity(vendor: "AnvilLab", product: "R1", serial: "LAB-0001", uuid: "5a1b0000-0000-4000-8000-000000000001"),
        memoryMiB: 768, disksMiB: [64, 96])
    static let second = Guest(
        mac: "52:54:00:d1:5c:02", tap: "tap1",
        identity: SMBIOSIdentity(vendor: "AnvilLab", product: "R2", serial: "LAB-0002", uuid: "5a1b0000-0000-4000-8000-000000000002"),
        memoryMiB: 1024, disksMiB: [128])

    static func boot(_ guest: Guest, disks: [Int]? = nil, in lab: DHCPLab) throws -> QEMUMachine {
        try QEMUMachine.start(
            firmware: .bios, mac: guest.mac, tap: guest.tap, in: lab.clients, directory: lab.directory, memoryMiB: guest.memoryMiB,
            identity: guest.identity, diskSizesMiB: disks ?? guest.disksMiB)
    }

    /// GET on the admin API from inside the server's namespace, as JSON.
    static func admin(_ lab: DHCPLab, _ path: String) async throws -> Any {
        let token = try String(contentsOfFile: lab.anvil.dataDirectory + "/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let output = try await lab.server.run([
            "curl", "--silent", "--insecure", "--max-time", "30", "--header", "Authorization: Bearer \(token)", "\(lab.anvil.adminURL)\(path)",
        ]).stdout
        return try JSONSerialization.jsonObject(with: Data(output.utf8))
    }

    static func machines(_ lab: DHCPLab) async throws -> [[String: Any]] {
        ((try await admin(lab, "/api/v1/machines") as? [String: Any])?["items"] as? [[String: Any]]) ?? []
    }

    static func machine(_ lab: DHCPLab, mac: String) async throws -> [String: Any]? {
        ((try await admin(lab, "/api/v1/machines?mac=\(mac)") as? [String: Any])?["items"] as? [[String: Any]])?.first
    }

    @Test("two machines appear with their exact facts; a reboot adds none; a pulled disk is a facts change with its diff")
    func discovery() async throws {
        try await DiscoveryImage.build()
        let lab = try await DHCPLab.rack(taps: ["tap0", "tap1"])
        defer { lab.stop() }
        try await lab.createSubnet()

        var first = try Self.boot(Self.first, in: lab)
        defer { first.stop() }
        let second = try Self.boot(Self.second, in: lab)
        defer { second.stop() }
        for machine in [first, second] { try await machine.waitForConsole("anvil-agent: called home", timeout: .seconds(600)) }

        #expect(try await Self.machines(lab).count == 2)
        for guest in [Self.first, Self.second] {
            let machine = try #require(try await Self.machine(lab, mac: guest.mac), "no machine with \(guest.mac)")
            let facts = try #require(machine["facts"] as? [String: Any])
            #expect(machine["state"] as? String == "ready")
            #expect(facts["systemVendor"] as? String == guest.identity.vendor)
            #expect(facts["systemProduct"] as? String == guest.identity.product)
            #expect(facts["systemSerial"] as? String == guest.identity.serial)
            #expect(facts["systemUUID"] as? String == guest.identity.uuid)
            #expect(facts["memoryBytes"] as? Int == guest.memoryMiB << 20, "\(facts["memoryBytes"] ?? "none")")
            let disks = (facts["disks"] as? [[String: Any]]) ?? []
            #expect(disks.map { $0["sizeBytes"] as? Int } == guest.disksMiB.map { $0 << 20 }, "\(disks)")
            let nics = (facts["nics"] as? [[String: Any]]) ?? []
            #expect(nics.map { $0["mac"] as? String } == [guest.mac])
        }

        // Reboot the first machine with the same hardware: it calls home with its token, and stays one machine.
        first.stop()
        first = try Self.boot(Self.first, in: lab)
        try await first.waitForConsole("anvil-agent: called home", timeout: .seconds(600))
        #expect(try await Self.machines(lab).count == 2)

        // Pull its second disk: the call-home after the next boot records the change.
        first.stop()
        first = try Self.boot(Self.first, disks: [64], in: lab)
        try await first.waitForConsole("anvil-agent: called home", timeout: .seconds(600))
        #expect(try await Self.machines(lab).count == 2)
        let id = try #require(try await Self.machine(lab, mac: Self.first.mac)?["id"] as? String)
        let history = try #require(try await Self.admin(lab, "/api/v1/machines/\(id)/history?action=factsChanged") as? [String: Any])
        let changes = ((history["items"] as? [[String: Any]])?.first?["detail"] as? [String: Any])?["changes"] as? [[String: Any]]
        // The disk and its virtio PCI function went together.
        #expect(
            changes?.map { $0["summary"] as? String } == [
                "disks[serial disk-525400d15c01-1] disappeared (was vdb, 96 MiB)",
                "pciDevices[0000:00:04.0] disappeared (was 1af4:1001, class 010000)",
            ], "\(history)")
    }
}
