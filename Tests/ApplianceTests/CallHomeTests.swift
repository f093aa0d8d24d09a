import ApplianceTesting
import Foundation
import Testing

/// The agent (templates/agent/anvil-agent.sh, run by busybox sh as in the discovery image) against
/// fake system roots of two kinds of server, and its call-home into a real `anvil serve`.
@Suite("Agent inventory and call-home", .serialized, .timeLimit(.minutes(5)))
struct CallHomeTests {
    static let agent = AnvilServer.repositoryRoot + "/templates/agent/anvil-agent.sh"
    static let goldenDirectory = AnvilServer.repositoryRoot + "/Tests/ApplianceTests/GoldenInventories"

    static let dellDIMMs =
        (1...4).map { slot in
            """
            Handle 0x110\(slot), DMI type 17, 84 bytes
            Memory Device
            \tArray Handle: 0x1000
            \tTotal Width: 72 bits
            \tSize: 16 GB
            \tForm Factor: DIMM
            \tLocator: A\(slot)
            \tBank Locator: Not Specified
            \tType: DDR4
            \tType Detail: Synchronous Registered (Buffered)
            \tSpeed: 2933 MT/s
            \tManufacturer: 00AD00B300AD
            \tSerial Number: 3A1B2C\(slot)D
            \tPart Number: HMA82GR7CJR8N-WM
            \tConfigured Memory Speed: 2666 MT/s

            """
        }.joined(separator: "\n") + """

            Handle 0x1105, DMI type 17, 84 bytes
            Memory Device
            \tSize: No Module Installed
            \tLocator: A5
            \tType: Unknown

            """

    /// A Dell-like 1U server: two sockets, four DIMMs, SATA disks (serials through smartctl), a BMC.
    static let dell = FakeSystemRoot(
        dmi: [
            "sys_vendor": "Dell Inc.", "product_name": "PowerEdge R640", "product_serial": "7XK9Q13",
            "product_uuid": "4C4C4544-0058-4B10-8039-B7C04F513133", "board_vendor": "Dell Inc.", "board_name": "0H28RR",
            "board_serial": ".7XK9Q13.CNFCP0089C00H1.", "chassis_type": "23", "chassis_serial": "7XK9Q13",
            "bios_vendor": "Dell Inc.", "bios_version": "2.17.1",
        ],
        cpuinfo: FakeSystemRoot.cpuinfo(model: "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", sockets: 2, cores: 20),
        meminfoKiB: 65_500_000, dmidecodeType17: "# dmidecode 3.4\nSMBIOS 3.2.0 present.\n\n" + dellDIMMs,
        disks: [
            .init(
                name: "sda", sectors: 937_703_088, model: "MZ7KH480HAHQ0D3", smartctlSerial: "S47MNA0M901234",
                wwid: "naa.5002538e40a1b2c3"),
            .init(
                name: "sdb", sectors: 937_703_088, model: "MZ7KH480HAHQ0D3", smartctlSerial: "S47MNA0M905678",
                wwid: "naa.5002538e40a1b2c4"),
        ],
        nics: [
            .init(name: "eno1", mac: "e4:43:4b:10:20:30", driver: "i40e", pciAddress: "0000:19:00.0"),
            .init(name: "eno2", mac: "e4:43:4b:10:20:31", driver: "i40e", pciAddress: "0000:19:00.1", carrier: false),
        ],
        ipmiLAN: """
            Set in Progress         : Set Complete
            IP Address Source       : Static Address
            IP Address              : 10.20.0.41
            Subnet Mask             : 255.255.255.0
            MAC Address             : e4:43:4b:10:20:3f
            Default Gateway IP      : 10.20.0.1

            """)

    /// A white-box board with the firmware's placeholders, an NVMe disk, no dmidecode, no BMC.
    static let whitebox = FakeSystemRoot(
        dmi: [
            "sys_vendor": "Supermicro", "product_name": "Super Server", "product_serial": "To Be Filled By O.E.M.",
            "product_uuid": "03000200-0400-0500-0006-000700080009", "board_vendor": "Supermicro", "board_name": "X11SCL-F",
            "board_serial": "ZM194S012345", "chassis_type": "17", "bios_vendor": "American Megatrends Inc.",
            "bios_version": "1.4",
        ],
        cpuinfo: FakeSystemRoot.cpuinfo(model: "Intel(R) Xeon(R) E-2278G CPU @ 3.40GHz", sockets: 1, cores: 8),
        meminfoKiB: 32_600_000, dmidecodeType17: nil,
        disks: [
            .init(
                name: "nvme0n1", sectors: 1_875_385_008, model: "SAMSUNG MZQLB960HAJR-00007", sysfsSerial: "S437NA0M700001",
                wwid: "eui.3437383052b001230025384100000001")
        ],
        nics: [
            .init(name: "enp1s0f0np0", mac: "0c:42:a1:55:66:70", driver: "mlx5_core", pciAddress: "0000:01:00.0", speed: 25000)
        ],
        ipmiLAN: nil)

    static func inventory(
        _ root: FakeSystemRoot, in directory: TemporaryDirectory, name: String
    ) async throws -> (json: String, environment: [String: String]) {
        var environment = try root.write(to: directory.file(name))
        environment["ANVIL_BOOTIF"] = "01-" + root.nics[0].mac.replacingOccurrences(of: ":", with: "-")
        let result = try await AnvilServer.run("/bin/busybox", ["sh", agent, "--inventory"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        return (result.stdout, environment)
    }

    /// Sorted, indented JSON, so goldens diff line by line.
    static func pretty(_ json: String) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        let data = try JSONSerialization.data(
            withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    @Test("the agent's inventory of each fixture server matches its golden JSON", arguments: ["dell-r640", "whitebox"])
    func goldenInventory(_ name: String) async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-agent")
        defer { directory.remove() }
        let output = try await Self.inventory(name == "whitebox" ? Self.whitebox : Self.dell, in: directory, name: name).json
        let actual = try Self.pretty(output)
        let path = Self.goldenDirectory + "/\(name).json"
        if ProcessInfo.processInfo.environment["ANVIL_UPDATE_GOLDEN"] == "1" {
            try actual.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let golden = try String(contentsOfFile: path, encoding: .utf8)
        #expect(actual == golden, "agent output for \(name) differs from \(path); ANVIL_UPDATE_GOLDEN=1 rewrites it")
    }

    @Test(
        "call-home creates the machine once, a repeat changes nothing, a lost disk is a change with a diff, a copied MAC is a conflict"
    )
    func callHome() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-callhome")
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--tftp-listen", "off"])
        defer { server.stopBlocking() }

        var (_, environment) = try await Self.inventory(Self.dell, in: directory, name: "dell")
        environment["ANVIL_URL"] = server.bootURL
        environment["ANVIL_STATE"] = directory.file("agent-state")
        func callHome(_ environment: [String: String]) async throws -> AnvilServer.CLIResult {
            try await AnvilServer.run(
                "/usr/bin/timeout", ["60", "/bin/busybox", "sh", Self.agent, "--once"], environment: environment)
        }
        func machines(_ filters: [String] = []) async throws -> [[String: Any]] {
            let listed = try await server.cli(["machines", "list", "--json"] + filters.flatMap { ["--filter", $0] })
            #expect(listed.status == 0, "\(listed.stderr)")
            return (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
        }

        let first = try await callHome(environment)
        #expect(first.status == 0 && first.stderr.contains("state ready"), "\(first.stderr)")
        let all = try await machines()
        #expect(all.count == 1)
        let machine = try #require(all.first)
        let facts = try #require(machine["facts"] as? [String: Any])
        #expect(facts["systemSerial"] as? String == "7XK9Q13")
        #expect(facts["systemUUID"] as? String == "4c4c4544-0058-4b10-8039-b7c04f513133")
        #expect(facts["memoryBytes"] as? Int == 64 << 30)
        #expect(facts["cpuCores"] as? Int == 40 && facts["cpuThreads"] as? Int == 80 && facts["cpuSockets"] as? Int == 2)
        #expect((facts["disks"] as? [Any])?.count == 2)
        #expect((facts["bmc"] as? [String: Any])?["address"] as? String == "10.20.0.41")
        let interfaces = try #require(machine["interfaces"] as? [[String: Any]])
        #expect(interfaces.map { $0["mac"] as? String } == ["e4:43:4b:10:20:30", "e4:43:4b:10:20:31"])
        #expect(interfaces.map { $0["boot"] as? Bool } == [true, false])
        let name = try #require(machine["name"] as? String)

        // Reboot: the same hardware with the machine's token (the state directory keeps it).
        let again = try await callHome(environment)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try await machines().count == 1)

        // A disk pulled: the next call-home records what changed.
        try FileManager.default.removeItem(atPath: directory.file("dell/sys/block/sdb"))
        let changed = try await callHome(environment)
        #expect(changed.status == 0, "\(changed.stderr)")
        let history = try await server.cli(["machines", "history", name, "--action", "factsChanged"])
        #expect(history.status == 0, "\(history.stderr)")
        #expect(history.stdout.contains("disks[serial S47MNA0M905678] disappeared (was sdb, 447.1 GiB"), "\(history.stdout)")
        #expect(try await machines(["disk.count>=2"]).isEmpty)
        #expect(try await machines(["memory>=64GiB", "disk.count=1"]).count == 1)

        // Without the token, known hardware is refused (only unknown machines call home unauthenticated).
        var stranger = environment
        stranger["ANVIL_STATE"] = directory.file("stranger-state")
        let refused = try await AnvilServer.run(
            "/usr/bin/timeout", ["5", "/bin/busybox", "sh", Self.agent, "--once"], environment: stranger)
        #expect(refused.stderr.contains("HTTP 401"), "\(refused.stderr)")

        // Another board claiming the first one's MAC: a conflict, noted, nothing merged.
        var copy = Self.whitebox
        copy.nics[0].mac = "e4:43:4b:10:20:30"
        copy.dmi["product_uuid"] = "8f2b1c3a-1111-4222-8333-944455556666"
        var (_, copyEnvironment) = try await Self.inventory(copy, in: directory, name: "copy")
        copyEnvironment["ANVIL_URL"] = server.bootURL
        copyEnvironment["ANVIL_STATE"] = directory.file("copy-state")
        let conflict = try await AnvilServer.run(
            "/usr/bin/timeout", ["5", "/bin/busybox", "sh", Self.agent, "--once"], environment: copyEnvironment)
        #expect(conflict.stderr.contains("HTTP 409"), "\(conflict.stderr)")
        #expect(try await machines().count == 1)
        let conflicts = try await server.cli(["machines", "history", name, "--action", "identityConflict"])
        #expect(conflicts.stdout.contains("the caller has the MACs of \(name) but system UUID 8f2b1c3a"), "\(conflicts.stdout)")

        // The new whitebox (placeholders for serial and UUID) is a new machine, matched later by MAC.
        var (_, whiteboxEnvironment) = try await Self.inventory(Self.whitebox, in: directory, name: "whitebox")
        whiteboxEnvironment["ANVIL_URL"] = server.bootURL
        whiteboxEnvironment["ANVIL_STATE"] = directory.file("whitebox-state")
        let whitebox = try await callHome(whiteboxEnvironment)
        #expect(whitebox.status == 0, "\(whitebox.stderr)")
        #expect(try await machines().count == 2)
        #expect(try await machines(["memory>=64GiB"]).count == 1)
        #expect(try await machines(["vendor=Supermicro", "nic.count=1"]).count == 1)
    }

    @Test("anvil.task on the kernel command line: the agent runs the task once after calling home and logs its exit code")
    func kernelCommandLineTask() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-agent-task")
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--tftp-listen", "off"])
        defer { server.stopBlocking() }
        let tasks = directory.file("tasks")
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        try "echo \"task ran against $ANVIL_URL\"\nexit 3\n".write(toFile: tasks + "/task.sh", atomically: true, encoding: .utf8)
        let files = try await LocalHTTPServer(root: tasks, scratch: directory)
        defer { files.stop() }

        var (_, environment) = try await Self.inventory(Self.whitebox, in: directory, name: "whitebox")
        environment["ANVIL_URL"] = server.bootURL
        environment["ANVIL_STATE"] = directory.file("agent-state")
        // As the image-deploy and wipe boot environments boot the discovery image.
        let taskURL = "\(files.url)/task.sh"
        try "quiet anvil.task=\(taskURL) BOOTIF=01-0c-42-a1-55-66-70\n".write(
            toFile: directory.file("whitebox/proc/cmdline"), atomically: true, encoding: .utf8)
        func agent(_ environment: [String: String]) async throws -> AnvilServer.CLIResult {
            try await AnvilServer.run(
                "/usr/bin/timeout", ["60", "/bin/busybox", "sh", Self.agent, "--once"], environment: environment)
        }

        let first = try await agent(environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("task ran against \(server.bootURL)\n"), "\(first.stdout)")
        #expect(first.stderr.contains("anvil-agent: running task \(taskURL)\n"), "\(first.stderr)")
        #expect(first.stderr.contains("anvil-agent: task \(taskURL) exited with 3\n"), "\(first.stderr)")
        #expect(first.stderr.contains("anvil-agent: task result posted to Anvil: HTTP 200\n"), "\(first.stderr)")
        #expect(first.stderr.range(of: "called home")!.lowerBound < first.stderr.range(of: "running task")!.lowerBound)
        // Anvil noted the result; the machine (ready, not deploying) is not failed by it.
        let listed = try await server.cli(["machines", "list", "--json"])
        let machines = (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
        let name = try #require(machines.first?["name"] as? String, "\(listed.stdout)")
        #expect(machines.first?["state"] as? String == "ready", "\(listed.stdout)")
        let results = try await server.cli(["machines", "history", name, "--action", "taskFinished"])
        #expect(results.status == 0, "\(results.stderr)")
        #expect(results.stdout.contains("  taskFinished  agent"), "\(results.stdout)")
        #expect(results.stdout.contains("    task \(taskURL) exited with 3\n"), "\(results.stdout)")

        // The agent restarted in the same boot (same state directory): the task does not run again.
        let again = try await agent(environment)
        #expect(again.status == 0 && !again.stdout.contains("task ran"), "\(again.stdout)")
        #expect(again.stderr.contains("anvil-agent: task \(taskURL) already ran this boot (exit 3)"), "\(again.stderr)")

        // A task URL that answers 404 (a new boot: no task status; the token kept): the agent says so
        // after its bounded retries and goes on.
        try FileManager.default.removeItem(atPath: directory.file("agent-state/task.status"))
        var missing = environment
        missing["ANVIL_TASK"] = "\(files.url)/no-such-task.sh"
        let failed = try await agent(missing)
        #expect(failed.status == 0, "\(failed.stderr)")
        #expect(failed.stderr.contains("anvil-agent: cannot fetch task \(files.url)/no-such-task.sh: "), "\(failed.stderr)")
        #expect(failed.stderr.contains("404"), "\(failed.stderr)")
    }
}
