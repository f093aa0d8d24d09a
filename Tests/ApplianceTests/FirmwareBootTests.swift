import ApplianceTesting
import Foundation
import Testing

/// Real firmware against the real appliance: a QEMU machine on a tap in the test's own namespaces
/// boots from Anvil's DHCP and HTTP into the discovery image (software emulation when KVM is unusable:
/// tens of seconds per machine; the three modes run one after another, as three VMs on two cores
/// would slow each other down and share one lab address space).
@Suite("Firmware boots from Anvil", .serialized, .timeLimit(.minutes(20)))
struct FirmwareBootTests {
    /// The admin API's record of what the DHCP server told `mac`, as JSON text.
    static func bootDecisions(_ lab: DHCPLab, mac: String) async throws -> String {
        let token = try String(contentsOfFile: lab.anvil.dataDirectory + "/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return try await lab.server.run([
            "curl", "--silent", "--insecure", "--max-time", "30", "--header", "Authorization: Bearer \(token)",
            "\(lab.anvil.adminURL)/api/v1/boot-decisions?mac=\(mac)",
        ]).stdout
    }

    /// Boots one machine in a fresh rack until the discovery script runs on its console, hands
    /// `check` the lab, the machine and what Anvil recorded telling it (boot decisions, JSON), then
    /// follows the boot into the discovery image (built from Debian packages, served from
    /// `.build-discovery/boot-files`): its kernel runs /init, which gets an address from Anvil's
    /// DHCP and asks Anvil for the agent.
    static func bootToDiscovery(
        _ firmware: QEMUMachine.Firmware, mac: String, _ check: (DHCPLab, QEMUMachine, String) async throws -> Void
    ) async throws {
        try await DiscoveryImage.build()
        let lab = try await DHCPLab.rack()
        defer { lab.stop() }
        try await lab.createSubnet()
        let started = ContinuousClock.now
        // The kernel and its unpacked initrd need more than the firmware alone.
        let machine = try QEMUMachine.start(firmware: firmware, mac: mac, tap: "tap0", in: lab.clients, directory: lab.directory, memoryMiB: 768)
        defer { machine.stop() }
        try await machine.waitForConsole("Anvil: booting the discovery image")
        try await check(lab, machine, try await bootDecisions(lab, mac: mac))
        try await machine.waitForConsole("anvil-discovery: network up on ", timeout: .seconds(400))
        // Reported, never asserted: emulation speed varies with the machine's load.
        print("FirmwareBootTests: \(firmware) reached 'network up' \(ContinuousClock.now - started) after QEMU start")
        try await machine.waitForConsole("anvil-discovery: fetching http://10.77.0.1:8080/agent/anvil-agent.sh")
        let console = machine.console
        #expect(console.contains("anvil-discovery: Linux "), "\(console.suffix(3000))")
        #expect(console.contains("anvil-discovery: using eth0 (\(mac))"), "BOOTIF did not pick the boot NIC: \(console.suffix(3000))")
        #expect(console.contains("anvil-discovery: network up on eth0 10.77.0."), "\(console.suffix(3000))")
    }

    @Test("SeaBIOS with QEMU's iPXE ROM: DHCP answers iPXE with its script URL, and the unknown machine gets the discovery script")
    func biosIPXE() async throws {
        try await Self.bootToDiscovery(.bios, mac: "52:54:00:b1:05:01") { _, machine, decisions in
            let scriptURL = "http://10.77.0.1:8080/boot/52-54-00-b1-05-01.ipxe"
            #expect(machine.console.contains(scriptURL), "\(machine.console.suffix(2000))")
            #expect(decisions.contains("ipxe-script \(scriptURL)") && decisions.contains("client runs iPXE"), "\(decisions)")
        }
    }

    @Test("OVMF UEFI PXE: DHCP sends ipxe.efi over TFTP, iPXE then gets its script over HTTP")
    func uefiPXE() async throws {
        try await Self.bootToDiscovery(.uefiPXE, mac: "52:54:00:b1:05:02") { lab, _, decisions in
            let transfers = try await lab.counter("anvil_tftp_transfers_completed_total")
            #expect(transfers >= 1, "the loader did not come over TFTP")
            #expect(decisions.contains("tftp ipxe.efi") && decisions.contains("PXE efi-x64"), "\(decisions)")
            #expect(decisions.contains("ipxe-script http://10.77.0.1:8080/boot/52-54-00-b1-05-02.ipxe"), "\(decisions)")
        }
    }

    @Test("OVMF UEFI HTTP Boot: DHCP sends an http:// loader URL, no TFTP at all, then iPXE gets its script")
    func uefiHTTPBoot() async throws {
        try await Self.bootToDiscovery(.uefiHTTP, mac: "52:54:00:b1:05:03") { lab, _, decisions in
            let transfers = try await lab.counter("anvil_tftp_transfers_started_total")
            #expect(transfers == 0, "HTTP Boot used TFTP")
            #expect(decisions.contains("http http://10.77.0.1:8080/files/ipxe.efi"), "\(decisions)")
        }
    }
}
