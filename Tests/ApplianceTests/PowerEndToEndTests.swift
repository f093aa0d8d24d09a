import ApplianceTesting
import Foundation
import ProvisioningModel
import Testing

/// Power through a real `anvil serve` and its CLI against real BMCs (ipmi_sim on 127.0.0.1):
/// credentials attached from stdin, power actions and next-boot recorded with their outcomes,
/// sensors, the manual driver, the drift sync, and no password anywhere it could leak.
@Suite(.serialized) struct PowerEndToEndTests {
    static func json(_ text: String) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }

    @Test func adminsPowerMachinesThroughTheirBMCsAndPasswordsNeverShow() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-power")
        defer { directory.remove() }
        let bmcs = [
            try await IPMISimulator.start(in: directory.file("bmc-a")),
            try await IPMISimulator.start(in: directory.file("bmc-b")),
        ]
        defer { bmcs.forEach { $0.stop() } }
        // A short sync so drift shows up within the test; the sensor poll is left to the explicit reads.
        try "power:\n  syncIntervalSeconds: 10\n  sensorIntervalSeconds: 0\n  timeoutSeconds: 5\n"
            .write(toFile: directory.file("anvil.yaml"), atomically: true, encoding: .utf8)
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--tftp-listen", "off", "--config", directory.file("anvil.yaml")])
        defer { server.stopBlocking() }

        for (index, name) in ["rack1-a", "rack1-b", "no-bmc"].enumerated() {
            let created = try await server.cli([
                "machines", "create", "--set", "name=\(name)", "--set", "interfaces=[{\"mac\":\"52:54:00:00:0a:0\(index)\"}]",
            ])
            #expect(created.status == 0, "\(created.stderr)")
        }
        // ipmi_sim speaks cipher suite 3 and needs the open-session-privilege workaround.
        for (bmc, machine) in zip(bmcs, ["rack1-a", "rack1-b"]) {
            let attached = try await server.cli(
                [
                    "machines", "bmc", "set", machine, "--address", bmc.address, "--port", "\(bmc.port)", "--username",
                    bmc.username,
                    "--cipher-suite", "3", "--workaround", "opensesspriv",
                ], stdin: bmc.password + "\n")
            #expect(attached.status == 0, "\(attached.stderr)")
            #expect(!attached.stdout.contains(bmc.password))
            #expect(try Self.json(attached.stdout).objectValue?["passwordSet"] == .bool(true))
        }

        let info = try Self.json(try await server.cli(["machines", "bmc", "info", "rack1-a"]).stdout).objectValue ?? [:]
        #expect(info["manufacturerID"] == .integer(0x1291) && info["firmwareVersion"] == "9.08", "\(info)")

        // Cipher suite 0 is refused at the door, naming the field.
        let weak = try await server.cli(
            ["machines", "bmc", "set", "rack1-a", "--address", "127.0.0.1", "--username", "admin", "--cipher-suite", "0"],
            stdin: "x\n")
        #expect(weak.status != 0)
        #expect(weak.stderr.contains("cipherSuite"), "\(weak.stderr)")

        // Bulk power on: both BMCs turn on; the machine without a BMC gets the manual driver.
        let on = try await server.cli(["power", "on", "rack1-a", "rack1-b", "no-bmc", "--json"])
        #expect(on.status == 1, "a manual machine is not a success: \(on.stdout)")
        let results = try Self.json(on.stdout).objectValue?["results"]?.arrayValue ?? []
        #expect(results.map { $0.objectValue?["outcome"]?.stringValue } == ["success", "success", "manual"])
        #expect(results.prefix(2).allSatisfy { $0.objectValue?["state"] == .string("on") })
        #expect(bmcs.allSatisfy { $0.isPoweredOn })
        let operatorNotes = try await server.cli(["machines", "history", "no-bmc", "--action", "operatorAction"])
        #expect(operatorNotes.stdout.contains("has no BMC: on it by hand"), "\(operatorNotes.stdout)")

        // Next boot from the network, then a cycle; both recorded.
        let pxe = try await server.cli(["power", "pxe", "rack1-a", "--uefi", "--cycle"])
        #expect(pxe.status == 0, "\(pxe.stdout)\(pxe.stderr)")
        #expect(bmcs[0].bootDevice == "pxe")
        // ipmi_sim powers back on about a second after the cycle's off.
        for _ in 0..<300 where !bmcs[0].isPoweredOn { try await Task.sleep(for: .milliseconds(100)) }
        #expect(bmcs[0].chassisCalls.filter { $0.hasPrefix("set power") }.suffix(2) == ["set power 0", "set power 1"])
        let status = try await server.cli(["power", "status", "rack1-a"])
        #expect(status.status == 0 && status.stdout.contains("on"), "\(status.stdout)")
        let powerHistory = try await server.cli(["machines", "history", "rack1-a", "--action", "powerAction", "--json"])
        let recorded = (try Self.json(powerHistory.stdout).objectValue?["items"]?.arrayValue ?? []).compactMap {
            $0.objectValue?["detail"]?.objectValue?["action"]?.stringValue
        }
        #expect(recorded == ["on", "boot-pxe", "cycle", "status"])

        // Sensors, read live through the CLI.
        let sensors = try await server.cli(["machines", "sensors", "rack1-b", "--json"])
        let readings = try Self.json(sensors.stdout).objectValue?["readings"]?.arrayValue ?? []
        #expect(
            readings.contains {
                $0.objectValue?["name"] == "CPU Temp" && [.integer(45), .number(45)].contains($0.objectValue?["value"])
            }, "\(sensors.stdout)")

        // A wrong password is an authentication failure naming the BMC, and does not hold up the other BMC.
        let wrongPassword = try await server.cli(
            [
                "machines", "bmc", "set", "rack1-b", "--address", bmcs[1].address, "--port", "\(bmcs[1].port)", "--username",
                "admin",
                "--cipher-suite", "3", "--workaround", "opensesspriv",
            ], stdin: "wrong-password-123\n")
        #expect(wrongPassword.status == 0)
        let mixed = try Self.json(try await server.cli(["power", "off", "rack1-a", "rack1-b", "--json"]).stdout)
        let outcomes = mixed.objectValue?["results"]?.arrayValue?.map { $0.objectValue ?? [:] } ?? []
        #expect(outcomes.first?["outcome"] == "success")
        #expect(outcomes.last?["outcome"] == "authentication-failed")
        #expect(outcomes.last?["message"]?.stringValue?.contains("127.0.0.1:\(bmcs[1].port)") == true)
        #expect(!bmcs[0].isPoweredOn && bmcs[1].isPoweredOn)

        // Drift: rack1-a was switched off by Anvil; someone turns it on at the chassis. The sync notices.
        try bmcs[0].setPower(true)
        var drift = ""
        for _ in 0..<60 where !drift.contains("powerDrift") {
            try await Task.sleep(for: .seconds(1))
            drift = try await server.cli(["machines", "history", "rack1-a", "--action", "powerDrift"]).stdout
        }
        #expect(drift.contains("powerDrift"), "no drift recorded within 60 s")

        // No password in the API's answers, the event log or the server's log.
        let shown = try await server.cli(["machines", "bmc", "show", "rack1-a"])
        let events = try await server.cli(["events", "--json"])
        for bmc in bmcs {
            #expect(!shown.stdout.contains(bmc.password))
            #expect(!events.stdout.contains(bmc.password))
            #expect(!server.log.contains(bmc.password))
        }
        #expect(!server.log.contains("wrong-password-123"))
        #expect(!events.stdout.contains("wrong-password-123"))
        // WAL mode: recent writes are still in the -wal file.
        let database = ["inventory.db", "inventory.db-wal"].compactMap {
            FileManager.default.contents(atPath: directory.file("data/\($0)"))
        }
        .map { String(decoding: $0, as: UTF8.self) }.joined()
        #expect(!database.contains(bmcs[0].password), "the password is sealed at rest")
    }

    /// Staff rack a machine; its agent reports a BMC address inside a credential set's network, so the
    /// BMC is attached by itself and power works without anyone typing credentials for that machine.
    @Test func aDiscoveredMachinesBMCIsAttachedFromTheCredentialSetOfItsNetwork() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-power-sets")
        defer { directory.remove() }
        let bmc = try await IPMISimulator.start(in: directory.file("bmc"))
        defer { bmc.stop() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--tftp-listen", "off"])
        defer { server.stopBlocking() }

        let set = try await server.cli(
            [
                "bmc-credentials", "set", "rack1", "--network", "127.0.0.0/8", "--port", "\(bmc.port)", "--username",
                bmc.username,
                "--cipher-suite", "3", "--workaround", "opensesspriv",
            ], stdin: bmc.password + "\n")
        #expect(set.status == 0, "\(set.stderr)")
        let badNetwork = try await server.cli(
            ["bmc-credentials", "set", "bad", "--network", "10.0.0/33", "--username", "u"], stdin: "p\n")
        #expect(badNetwork.status != 0 && badNetwork.stderr.contains("network"), "\(badNetwork.stderr)")
        let listed = try await server.cli(["bmc-credentials", "list"])
        #expect(listed.stdout.contains("127.0.0.0/8") && !listed.stdout.contains(bmc.password))

        // An unknown machine calls home (as the agent does) with its BMC's LAN address.
        let report =
            #"{"bootMAC":"52:54:00:5e:70:01","facts":{"systemSerial":"SET-0001","systemUUID":"5a1b0000-0000-4000-8000-0000005e7001","#
            + #""nics":[{"name":"eth0","mac":"52:54:00:5e:70:01"}],"bmc":{"address":"127.0.0.1"}}}"#
        let posted = try await AnvilServer.run(
            "/usr/bin/curl",
            [
                "--silent", "--fail", "--max-time", "30", "-H", "Content-Type: application/json", "--data", report,
                server.bootURL + "/api/v1/machines/callhome",
            ])
        #expect(posted.status == 0, "\(posted.stdout)\(posted.stderr)")

        let shown = try Self.json(try await server.cli(["machines", "bmc", "show", "d5254005e7001"]).stdout).objectValue ?? [:]
        #expect(shown["address"] == "127.0.0.1")
        #expect(shown["port"] == .integer(Int64(bmc.port)))
        #expect(shown["passwordSet"] == .bool(true))
        let attached = try await server.cli(["machines", "history", "d5254005e7001", "--action", "bmcAttached"])
        #expect(attached.stdout.contains("rack1"), "\(attached.stdout)")
        let status = try await server.cli(["power", "status", "d5254005e7001", "--json"])
        #expect(
            try Self.json(status.stdout).objectValue?["results"]?.arrayValue?.first?.objectValue?["outcome"] == "success",
            "\(status.stdout)")
    }

    /// A BMC whose chassis control starts and stops a QEMU machine: Anvil sets PXE as the next boot,
    /// powers it on, and the machine network-boots the discovery image and calls home as the machine
    /// Anvil knows (by its MAC); a cycle boots it again; off stops it.
    @Test(.timeLimit(.minutes(20))) func aMachinePoweredOnThroughItsBMCNetworkBootsFromAnvil() async throws {
        try await DiscoveryImage.build()
        let lab = try await DHCPLab.rack()
        defer { lab.stop() }
        try await lab.createSubnet()
        let mac = "52:54:00:b3:c0:01"
        let identity = SMBIOSIdentity(
            vendor: "AnvilLab", product: "P1", serial: "PWR-0001", uuid: "5a1b0000-0000-4000-8000-00000000b301")
        // The BMC answers on the server namespace's loopback; the machine runs in the rack.
        let bmc = try await IPMISimulator.start(in: lab.directory.file("bmc"), namespace: lab.server)
        defer { bmc.stop() }
        try bmc.wirePower(
            to: try QEMUMachine.command(mac: mac, tap: "tap0", directory: lab.directory, memoryMiB: 512, identity: identity),
            in: lab.clients)
        let console = QEMUMachine.serialLog(mac: mac, directory: lab.directory)
        func waitForCallHome(_ what: String) async throws {
            for _ in 0..<600 {
                if ((try? String(contentsOfFile: console, encoding: .utf8)) ?? "").contains("anvil-agent: called home") { return }
                try await Task.sleep(for: .seconds(1))
            }
            Issue.record("\(what): no call-home on the console within 600 s")
        }

        try await lab.cli([
            "machines", "create", "--set", "name=vm1", "--set", "bootEnv=discovery", "--set", "interfaces=[{\"mac\":\"\(mac)\"}]",
        ])
        let passwordFile = lab.directory.file("bmc-password")
        FileManager.default.createFile(
            atPath: passwordFile, contents: Data((bmc.password + "\n").utf8), attributes: [.posixPermissions: 0o600])
        try await lab.cli([
            "machines", "bmc", "set", "vm1", "--address", "127.0.0.1", "--port", "\(bmc.port)", "--username", bmc.username,
            "--password-file", passwordFile, "--cipher-suite", "3", "--workaround", "opensesspriv",
        ])

        try await lab.cli(["power", "pxe", "vm1"])
        #expect(bmc.bootDevice == "pxe")
        #expect(bmc.machinePID == nil)
        let poweredOn = ContinuousClock.now
        try await lab.cli(["power", "on", "vm1"])
        let firstPID = try #require(bmc.machinePID, "power on started no machine: \(bmc.chassisCalls)")
        try await waitForCallHome("first boot")
        // A figure for the README (power-on to discovered under software emulation), never asserted.
        print("power-end-to-end: power on → call-home in \(ContinuousClock.now - poweredOn)")
        let listed = try Self.json(try await lab.cli(["machines", "list", "--json"]).stdout).arrayValue ?? []
        #expect(listed.count == 1, "the machine called home as the one Anvil knew: \(listed)")
        #expect(listed.first?.objectValue?["facts"]?.objectValue?["systemSerial"] == .string(identity.serial))

        // A cycle restarts the machine (QEMU starts its console afresh) and it boots from Anvil again.
        try "".write(toFile: console, atomically: false, encoding: .utf8)
        try await lab.cli(["power", "cycle", "vm1"])
        for _ in 0..<100 where bmc.machinePID == nil || bmc.machinePID == firstPID {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(bmc.machinePID != nil && bmc.machinePID != firstPID, "the cycle did not restart the machine: \(bmc.chassisCalls)")
        try await waitForCallHome("after the cycle")

        let off = try await lab.cli(["power", "off", "vm1", "--json"])
        #expect(try Self.json(off.stdout).objectValue?["results"]?.arrayValue?.first?.objectValue?["state"] == "off")
        #expect(bmc.machinePID == nil)
    }
}
