import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `anvil lab`: a virtual rack built from the same pieces as the end-to-end tests. A `DHCPLab.rack`
/// (Anvil with DHCP in a server namespace, a bridge with one tap per machine in a rack namespace,
/// nothing linked to the host), one ipmi_sim BMC per machine on the server namespace's BMC
/// addresses with chassis power wired to the machine's QEMU command line, and the machines known
/// to Anvil with their BMCs, powered on through Anvil so they PXE-boot and get discovered.
/// Everything it starts runs in a session of its own: `up` may exit, `down` stops them by PID.
public enum VirtualRack {
    public enum Firmware: String, CaseIterable, Codable, Sendable {
        case bios, uefi, httpboot, mixed

        /// The firmware of the machine at `index`: mixed cycles through the other three.
        func forMachine(_ index: Int) -> Firmware { self == .mixed ? [.bios, .uefi, .httpboot][index % 3] : self }

        /// What QEMU boots (mixed as its first machine would).
        var qemu: QEMUMachine.Firmware {
            switch self {
            case .bios, .mixed: .bios
            case .uefi: .uefiPXE
            case .httpboot: .uefiHTTP
            }
        }
    }

    /// One machine of the rack, as recorded in the state file.
    public struct Machine: Codable, Sendable {
        public var name: String
        public var mac: String
        public var firmware: Firmware
        public var memoryMiB: Int
        public var diskSizesMiB: [Int]
        public var vendor: String
        public var product: String
        public var serial: String
        public var uuid: String
        public var bmcAddress: String
        public var bmcPort: Int
        public var bmcPID: Int32
        /// The BMC's files; the QEMU PID (while powered on) is its `machine.pid`.
        public var bmcDirectory: String
        public var serialLog: String

        /// The QEMU process while the machine is powered on.
        public var machinePID: pid_t? { IPMISimulator.machinePID(in: bmcDirectory) }
        public var bmcSaysOn: Bool { IPMISimulator.isPoweredOn(in: bmcDirectory) }
    }

    /// `<dir>/lab.json`: what `status`, `console` and `down` need, written as soon as the namespaces exist.
    public struct State: Codable, Sendable {
        public var directory: String
        public var dataDirectory: String
        public var serverNamespace: String
        public var rackNamespace: String
        public var anvilPID: Int32?
        public var adminURL: String?
        public var machines: [Machine]

        public static func file(in directory: String) -> String { directory + "/lab.json" }

        public static func load(from directory: String) throws -> State? {
            guard let data = FileManager.default.contents(atPath: file(in: directory)) else { return nil }
            return try JSONDecoder().decode(State.self, from: data)
        }

        func save() throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(self).write(to: URL(fileURLWithPath: Self.file(in: directory)))
        }

        /// Runs the `anvil` CLI inside the server namespace against the lab's Anvil.
        public func cli(_ arguments: [String]) async throws -> AnvilServer.CLIResult {
            let command = NetworkNamespace(name: serverNamespace).wrap([AnvilServer.binary] + arguments + ["--data-dir", dataDirectory])
            return try await AnvilServer.run(command[0], Array(command.dropFirst()))
        }
    }

    /// BMC addresses live on the server namespace's loopback (one /32 each): Anvil reaches them
    /// there, and the credential set covers their network.
    public static let bmcNetwork = "10.77.1.0/24"
    static let bmcUsername = "admin"

    /// The machine at `index` (0-based): distinct SMBIOS identity, memory, disk count and MAC, the same
    /// on every run so a test (or a person) knows what discovery should find.
    public static func plan(index: Int, firmware: Firmware, directory: TemporaryDirectory) -> Machine {
        let number = index + 1
        let vendors = ["Anvil Lab Systems", "Forge Works", "Ironclad Computing"]
        let products = ["LS-110", "FW-220 2U", "IC-330 Blade"]
        let mac = String(format: "52:54:00:1a:b0:%02x", number)
        return Machine(
            name: "vm\(number)", mac: mac, firmware: firmware.forMachine(index), memoryMiB: 512 + 128 * (index % 3),
            diskSizesMiB: Array(repeating: 1024, count: 1 + index % 3).enumerated().map { $0.element * ($0.offset + 1) },
            vendor: vendors[index % 3], product: products[index % 3], serial: String(format: "LAB-%04d", number),
            uuid: String(format: "5a1b1ab0-0000-4000-8000-%012x", number), bmcAddress: "10.77.1.\(10 + number)", bmcPort: 623,
            bmcPID: 0, bmcDirectory: directory.file("bmc-vm\(number)"),
            serialLog: QEMUMachine.serialLog(mac: mac, directory: directory))
    }

    // MARK: - Requirements

    /// Everything `up` needs, checked before it creates anything: one message per missing piece.
    public static func missingRequirements(firmware: Firmware, contentDirectory: String) -> [String] {
        var missing: [String] = []
        if !hasNetworkAdministration {
            missing.append("network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run it with sudo")
        }
        let programs = [
            ("/usr/bin/qemu-system-x86_64", "QEMU (apt-get install qemu-system-x86)"),
            ("/usr/bin/ipmi_sim", "ipmi_sim, the BMC simulator (apt-get install openipmi)"),
            ("/usr/sbin/ip", "ip (apt-get install iproute2)"),
            ("/usr/bin/setsid", "setsid (apt-get install util-linux)"),
        ]
        for (path, what) in programs where !FileManager.default.isExecutableFile(atPath: path) {
            missing.append("\(what): \(path) not found")
        }
        let machines = (0..<3).map { firmware.forMachine($0).qemu }
        if machines.contains(.bios), !FileManager.default.fileExists(atPath: "/usr/lib/ipxe/qemu/efi-virtio.rom") {
            missing.append("iPXE ROMs for QEMU's NICs (apt-get install ipxe-qemu): /usr/lib/ipxe/qemu/efi-virtio.rom not found")
        }
        if machines.contains(where: { $0 != .bios }) {
            for file in ["OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"] where !FileManager.default.fileExists(atPath: "/usr/share/OVMF/" + file) {
                missing.append("UEFI firmware (apt-get install ovmf): /usr/share/OVMF/\(file) not found")
            }
        }
        let image = contentDirectory + "/.build-discovery/boot-files/discovery/amd64"
        for file in ["vmlinuz", "initrd.gz"] where !FileManager.default.fileExists(atPath: image + "/" + file) {
            missing.append("the discovery image: \(image)/\(file) not found (run deploy/build-discovery-image.sh)")
        }
        if !FileManager.default.fileExists(atPath: contentDirectory + "/bootenvs") {
            missing.append("Anvil's content (bootenvs/, templates/): \(contentDirectory)/bootenvs not found (give --content-dir)")
        }
        return missing
    }

    /// CAP_NET_ADMIN (bit 12) and CAP_SYS_ADMIN (bit 21, for `ip netns add`) in the effective set.
    static var hasNetworkAdministration: Bool {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return getuid() == 0 }
        return mask & (1 << 12) != 0 && mask & (1 << 21) != 0
    }

    // MARK: - Up

    /// Builds the rack and powers the machines on through Anvil. On failure everything it created
    /// is taken down again (by PID, namespaces deleted, directory removed).
    public static func up(
        machines count: Int, firmware: Firmware, directory path: String, contentDirectory: String,
        progress: @Sendable (String) -> Void
    ) async throws -> State {
        guard FileManager.default.fileExists(atPath: State.file(in: path)) == false else {
            throw AnvilServerError("a lab is already up in \(path): run `anvil lab down --dir \(path)` first")
        }
        let missing = missingRequirements(firmware: firmware, contentDirectory: contentDirectory)
        guard missing.isEmpty else {
            throw AnvilServerError("cannot build the lab, nothing was created:\n" + missing.map { "  - " + $0 }.joined(separator: "\n"))
        }
        let directory = try TemporaryDirectory(at: path)
        progress("building the namespaces and starting Anvil in \(directory.path)")
        let plans = (0..<count).map { plan(index: $0, firmware: firmware, directory: directory) }
        let lab: DHCPLab
        do {
            lab = try await DHCPLab.rack(
                taps: plans.indices.map { "tap\($0)" }, directory: directory, namespacePrefix: "anvil-lab",
                contentDirectory: contentDirectory, detached: true)
        } catch {
            directory.remove()
            throw error
        }
        var state = State(
            directory: directory.path, dataDirectory: lab.anvil.dataDirectory, serverNamespace: lab.server.name,
            rackNamespace: lab.clients.name, anvilPID: lab.anvil.pid, adminURL: lab.anvil.adminURL, machines: [])
        do {
            try state.save()
            try await configure(lab: lab, plans: plans, state: &state, progress: progress)
        } catch {
            down(state)
            lab.stop()
            throw error
        }
        return state
    }

    private static func configure(
        lab: DHCPLab, plans: [Machine], state: inout State, progress: @Sendable (String) -> Void
    ) async throws {
        // Throws with the command and its stderr when it fails.
        func cli(_ arguments: [String]) async throws { try await lab.cli(arguments) }
        try await lab.createSubnet()
        let password = "lab-" + UUID().uuidString.prefix(12).lowercased()
        let passwordFile = lab.directory.file("bmc-password")
        _ = FileManager.default.createFile(
            atPath: passwordFile, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600])
        // The credential set is what a real rack relies on for machines whose agent reports a BMC;
        // the lab's machines are created with their BMC attached, so Anvil can power them on first.
        try await cli([
            "bmc-credentials", "set", "lab", "--network", bmcNetwork, "--username", bmcUsername, "--password-file", passwordFile,
            "--cipher-suite", "3", "--workaround", "opensesspriv",
        ])
        for (index, var machine) in plans.enumerated() {
            let disks = machine.diskSizesMiB.count == 1 ? "1 disk" : "\(machine.diskSizesMiB.count) disks"
            progress("\(machine.name): \(machine.firmware), \(machine.memoryMiB) MiB, \(disks), BMC \(machine.bmcAddress)")
            try await lab.server.run(["ip", "addr", "add", machine.bmcAddress + "/32", "dev", "lo"])
            let bmc = try await IPMISimulator.start(
                in: machine.bmcDirectory, address: machine.bmcAddress, port: machine.bmcPort, username: bmcUsername,
                password: password, namespace: lab.server, detached: true)
            machine.bmcPID = bmc.pid
            state.machines.append(machine)
            try state.save()
            let identity = SMBIOSIdentity(vendor: machine.vendor, product: machine.product, serial: machine.serial, uuid: machine.uuid)
            try bmc.wirePower(
                to: try QEMUMachine.command(
                    firmware: machine.firmware.qemu, mac: machine.mac, tap: "tap\(index)",
                    directory: lab.directory, memoryMiB: machine.memoryMiB, identity: identity, diskSizesMiB: machine.diskSizesMiB),
                in: lab.clients)
            try await cli([
                "machines", "create", "--set", "name=\(machine.name)", "--set", "bootEnv=discovery", "--set",
                "interfaces=[{\"mac\":\"\(machine.mac)\"}]",
            ])
            try await cli([
                "machines", "bmc", "set", machine.name, "--address", machine.bmcAddress, "--port", "\(machine.bmcPort)", "--username",
                bmcUsername, "--password-file", passwordFile, "--cipher-suite", "3", "--workaround", "opensesspriv",
            ])
            try await cli(["power", "pxe", machine.name] + (machine.firmware == .bios ? [] : ["--uefi"]))
        }
        progress("powering on \(plans.map(\.name).joined(separator: " ")) through Anvil")
        try await cli(["power", "on"] + plans.map(\.name))
    }

    // MARK: - Down

    /// Stops everything the lab started, by the PIDs it recorded (Anvil first, so it issues no more
    /// power commands, then the BMCs, so nothing restarts a machine, then the machines), deletes the
    /// namespaces (with their taps and anything left inside) and removes the directory.
    public static func down(_ state: State) {
        if let pid = state.anvilPID, owned(pid, by: state) {
            kill(pid, SIGTERM)
            // A bounded wait for a clean shutdown (the inventory is SQLite in WAL mode), then SIGKILL.
            for _ in 0..<200 where owned(pid, by: state) { usleep(50_000) }
            if owned(pid, by: state) { kill(pid, SIGKILL) }
        }
        for machine in state.machines where owned(machine.bmcPID, by: state) { kill(machine.bmcPID, SIGKILL) }
        for machine in state.machines {
            if let pid = machine.machinePID, owned(pid, by: state) { kill(pid, SIGKILL) }
        }
        NetworkNamespace(name: state.rackNamespace).delete()
        NetworkNamespace(name: state.serverNamespace).delete()
        try? FileManager.default.removeItem(atPath: state.directory)
    }

    /// A PID is still ours when it runs with the lab's directory on its command line (QEMU's console
    /// file, ipmi_sim's configuration, Anvil's data directory): a recycled PID is left alone.
    static func owned(_ pid: pid_t, by state: State) -> Bool {
        guard pid > 1, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        // A zombie (state Z) is already dead; its parent reaps it.
        if let close = stat.lastIndex(of: ")"), stat[close...].dropFirst(2).first == "Z" { return false }
        return String(decoding: data, as: UTF8.self).contains(state.directory)
    }
}
