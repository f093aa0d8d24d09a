import ApplianceTesting
import Foundation
import ProvisioningModel
import Testing

/// `anvil lab`, run as a person would: the real CLI builds a virtual rack (namespaces, QEMU machines
/// with ipmi_sim BMCs, an Anvil of its own), the machines are powered on through Anvil and discovered
/// with the SMBIOS identities the lab gave them, and `lab down` leaves nothing behind.
@Suite(.serialized) struct LabTests {
    static func run(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> AnvilServer.CLIResult {
        try await AnvilServer.run(AnvilServer.binary, ["lab"] + arguments, timeout: timeout)
    }

    static func labNamespaces() -> Set<String> {
        Set(
            ChildProcess.runBlocking(["/usr/sbin/ip", "netns", "list"]).split(separator: "\n")
                .compactMap { $0.split(separator: " ").first.map(String.init) }.filter { $0.hasPrefix("anvil-lab-") })
    }

    /// Running and not a zombie (a zombie is dead, waiting for a parent that may not reap it soon).
    static func alive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[close...].dropFirst(2).first != "Z"
    }

    /// What the lab promises for its first two machines (`VirtualRack.plan`), written out so a change
    /// there shows up here.
    static let expected:
        [(name: String, vendor: String, product: String, serial: String, uuid: String, memoryMiB: Int, disks: Int)] = [
            ("vm1", "Anvil Lab Systems", "LS-110", "LAB-0001", "5a1b1ab0-0000-4000-8000-000000000001", 512, 1),
            ("vm2", "Forge Works", "FW-220 2U", "LAB-0002", "5a1b1ab0-0000-4000-8000-000000000002", 640, 2),
        ]

    @Test(.timeLimit(.minutes(25))) func labUpDiscoversEveryMachineAndLabDownLeavesNothing() async throws {
        try await DiscoveryImage.build()
        let scratch = try TemporaryDirectory(prefix: "anvil-lab-test")
        defer { scratch.remove() }
        let directory = scratch.file("lab")
        // A failing test still takes its lab down (by the state file's PIDs).
        defer { _ = ChildProcess.runBlocking([AnvilServer.binary, "lab", "down", "--dir", directory], timeout: .seconds(120)) }

        let up = try await Self.run(["up", "--machines", "2", "--firmware", "bios", "--dir", directory], timeout: .seconds(600))
        try #require(up.status == 0, "lab up failed: \(up.stdout)\(up.stderr)")
        let state = try #require(try VirtualRack.State.load(from: directory))
        #expect(up.stdout.contains("ip netns exec \(state.serverNamespace)"), "\(up.stdout)")
        #expect(state.machines.map(\.name) == ["vm1", "vm2"])
        #expect(Set(Self.labNamespaces()).isSuperset(of: [state.serverNamespace, state.rackNamespace]))

        // Discovery: both machines call home with the facts their SMBIOS tables, memory and disks give.
        var facts: [String: [String: JSONValue]] = [:]
        let deadline = ContinuousClock.now + .seconds(900)
        while ContinuousClock.now < deadline {
            let listed = try await state.cli(["machines", "list", "--json"])
            let machines = (try? JSONDecoder().decode(JSONValue.self, from: Data(listed.stdout.utf8)))?.arrayValue ?? []
            facts = Dictionary(
                machines.compactMap { machine in
                    guard let name = machine.objectValue?["name"]?.stringValue,
                        let known = machine.objectValue?["facts"]?.objectValue, known["systemSerial"] != nil
                    else { return nil }
                    return (name, known)
                }, uniquingKeysWith: { first, _ in first })
            if facts.count == Self.expected.count { break }
            try await Task.sleep(for: .seconds(5))
        }
        let status = try await Self.run(["status", "--dir", directory])
        for machine in Self.expected {
            let known = try #require(
                facts[machine.name], "\(machine.name) not discovered within 900 s; lab status:\n\(status.stdout)")
            #expect(known["systemVendor"]?.stringValue == machine.vendor)
            #expect(known["systemProduct"]?.stringValue == machine.product)
            #expect(known["systemSerial"]?.stringValue == machine.serial)
            #expect(known["systemUUID"]?.stringValue == machine.uuid)
            let memory = Int64(machine.memoryMiB) << 20
            #expect(
                [.integer(memory), .number(Double(memory))].contains(known["memoryBytes"]), "\(known["memoryBytes"] ?? .null)")
            #expect(known["disks"]?.arrayValue?.count == machine.disks, "\(known["disks"] ?? .null)")
        }
        #expect(status.status == 0 && status.stdout.contains("vm2"), "\(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("LAB-0002"), "lab status shows what Anvil discovered: \(status.stdout)")
        let statusJSON = try await Self.run(["status", "--json", "--dir", directory])
        let rows = try JSONDecoder().decode(JSONValue.self, from: Data(statusJSON.stdout.utf8)).arrayValue ?? []
        #expect(rows.compactMap { $0.objectValue?["name"]?.stringValue } == Self.expected.map(\.name), "\(statusJSON.stdout)")
        #expect(
            rows.allSatisfy {
                $0.objectValue?["power"] == "on" && ["discovered", "ready"].contains($0.objectValue?["state"]?.stringValue ?? "")
            }, "\(statusJSON.stdout)")
        #expect(rows.compactMap { $0.objectValue?["serial"]?.stringValue } == Self.expected.map(\.serial), "\(statusJSON.stdout)")
        let console = try await Self.run(["console", "vm1", "--no-follow", "--dir", directory])
        #expect(console.stdout.contains("anvil-agent: called home"), "\(console.stdout.suffix(2000))")

        let pids = ([state.anvilPID] + state.machines.map(\.bmcPID) + state.machines.map(\.machinePID)).compactMap { $0 }
        #expect(pids.count == 5, "Anvil, two BMCs, two running machines: \(pids)")
        let down = try await Self.run(["down", "--dir", directory])
        #expect(down.status == 0, "\(down.stdout)\(down.stderr)")
        #expect(Self.labNamespaces().isDisjoint(with: [state.serverNamespace, state.rackNamespace]))
        for pid in pids {
            // SIGKILLed processes vanish once reaped; allow the reaper a moment (bounded).
            for _ in 0..<100 where Self.alive(pid) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!Self.alive(pid), "process \(pid) from the state file still runs")
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
        let again = try await Self.run(["down", "--dir", directory])
        #expect(again.status == 0 && again.stdout.contains("nothing to do"), "\(again.stdout)\(again.stderr)")
    }

    /// A missing requirement (here the discovery image, absent from an empty content directory) is
    /// named with how to get it, before anything exists: no directory, no namespace.
    @Test func labUpWithAMissingRequirementSaysWhatIsMissingAndCreatesNothing() async throws {
        let scratch = try TemporaryDirectory(prefix: "anvil-lab-missing")
        defer { scratch.remove() }
        let content = scratch.file("empty-content")
        try FileManager.default.createDirectory(atPath: content, withIntermediateDirectories: true)
        let directory = scratch.file("lab")
        let before = Self.labNamespaces()

        let up = try await Self.run(["up", "--machines", "1", "--dir", directory, "--content-dir", content])
        #expect(up.status == 1, "\(up.stdout)\(up.stderr)")
        #expect(up.stderr.contains("nothing was created"), "\(up.stderr)")
        #expect(
            up.stderr.contains("the discovery image") && up.stderr.contains("deploy/build-discovery-image.sh"), "\(up.stderr)")
        #expect(up.stderr.contains("\(content)/bootenvs not found"), "\(up.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(Self.labNamespaces() == before)

        let status = try await Self.run(["status", "--dir", directory])
        #expect(status.status != 0 && status.stderr.contains("no lab in"), "\(status.stderr)")
    }
}
