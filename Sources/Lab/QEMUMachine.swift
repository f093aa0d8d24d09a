import Foundation

/// A QEMU virtual machine that network-boots on a tap device inside a test namespace, its serial
/// console written to a file. KVM is used when it works, software emulation (TCG) otherwise.
/// What a machine's SMBIOS type 1 table says: what the agent reports as vendor, product, serial, UUID.
public struct SMBIOSIdentity: Sendable {
    public var vendor: String
    public var product: String
    public var serial: String
    public var uuid: String

    public init(vendor: String, product: String, serial: String, uuid: String) {
        self.vendor = vendor
        self.product = product
        self.serial = serial
        self.uuid = uuid
    }
}

public final class QEMUMachine: @unchecked Sendable {
    public enum Firmware: String, Sendable {
        /// SeaBIOS with QEMU's iPXE option ROM on the NIC (the first DHCP already says "iPXE").
        case bios
        /// OVMF's own PXE (arch 7): the NIC's option ROM is left out, or its iPXE driver would take
        /// over and "UEFI" would silently be iPXE again.
        case uefiPXE
        /// OVMF's UEFI HTTP Boot (arch 16, vendor class HTTPClient), with PXE turned off so the
        /// firmware does not spend a minute on PXE attempts first.
        case uefiHTTP
    }

    public let mac: String
    public let serialLog: String
    /// QEMU's own messages.
    public let qemuLog: String
    private let process: ChildProcess

    private init(mac: String, serialLog: String, qemuLog: String, process: ChildProcess) {
        self.mac = mac
        self.serialLog = serialLog
        self.qemuLog = qemuLog
        self.process = process
    }

    /// Starts the machine on `tap` (which must exist in `namespace`).
    public static func start(
        firmware: Firmware = .bios, mac: String, tap: String, in namespace: NetworkNamespace, directory: TemporaryDirectory,
        memoryMiB: Int = 256, identity: SMBIOSIdentity? = nil, diskSizesMiB: [Int] = []
    ) throws -> QEMUMachine {
        let command = try self.command(
            firmware: firmware, mac: mac, tap: tap, directory: directory, memoryMiB: memoryMiB, identity: identity,
            diskSizesMiB: diskSizesMiB)
        let log = directory.file("qemu-\(mac.replacingOccurrences(of: ":", with: "")).log")
        let process = try ChildProcess.spawn(namespace.wrap(command), stdout: log, stderr: log)
        return QEMUMachine(mac: mac, serialLog: serialLog(mac: mac, directory: directory), qemuLog: log, process: process)
    }

    /// Where the machine's serial console is written (QEMU truncates it on every start).
    public static func serialLog(mac: String, directory: TemporaryDirectory) -> String {
        directory.file("serial-\(mac.replacingOccurrences(of: ":", with: "")).log")
    }

    /// The QEMU command line for the machine, for starting it here or from a BMC's chassis control.
    /// Creates the machine's files (console log, UEFI variables, sparse disks).
    public static func command(
        firmware: Firmware = .bios, mac: String, tap: String, directory: TemporaryDirectory, memoryMiB: Int = 256,
        identity: SMBIOSIdentity? = nil, diskSizesMiB: [Int] = []
    ) throws -> [String] {
        let serial = serialLog(mac: mac, directory: directory)
        FileManager.default.createFile(atPath: serial, contents: nil)
        let accelerator = kvmWorks ? "kvm:tcg" : "tcg"
        var command = [
            "/usr/bin/qemu-system-x86_64", "-m", "\(memoryMiB)", "-smp", "1",
            "-nodefaults", "-display", "none", "-no-reboot", "-serial", "file:\(serial)",
            "-netdev", "tap,id=n0,ifname=\(tap),script=no,downscript=no",
        ]
        switch firmware {
        case .bios:
            command += [
                "-machine", "pc,accel=\(accelerator),graphics=off", "-device", "virtio-net-pci,netdev=n0,mac=\(mac),bootindex=1",
            ]
        case .uefiPXE, .uefiHTTP:
            // OVMF writes its variables: each machine gets its own copy of the template.
            let variables = directory.file("ovmf-vars-\(mac.replacingOccurrences(of: ":", with: "")).fd")
            try? FileManager.default.removeItem(atPath: variables)
            try FileManager.default.copyItem(atPath: "/usr/share/OVMF/OVMF_VARS_4M.fd", toPath: variables)
            command += [
                "-machine", "q35,accel=\(accelerator)",
                "-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                "-drive", "if=pflash,format=raw,file=\(variables)",
                "-device", "virtio-net-pci,netdev=n0,mac=\(mac),bootindex=1,romfile=",
            ]
            if firmware == .uefiHTTP {
                command += [
                    "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no",
                    "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=no",
                ]
            }
        }
        if let identity {
            command += [
                "-smbios",
                "type=1,manufacturer=\(identity.vendor),product=\(identity.product),serial=\(identity.serial),uuid=\(identity.uuid)",
            ]
        }
        // Sparse raw disks: the guest sees their size and serial, the host spends no space.
        for (index, size) in diskSizesMiB.enumerated() {
            let name = "disk-\(mac.replacingOccurrences(of: ":", with: ""))-\(index)"
            let path = directory.file(name + ".raw")
            FileManager.default.createFile(atPath: path, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(size) << 20)
            try handle.close()
            command += [
                "-drive", "if=none,id=d\(index),format=raw,file=\(path)", "-device",
                "virtio-blk-pci,drive=d\(index),serial=\(name)",
            ]
        }
        return command
    }

    /// `/dev/kvm` can exist and still not run firmware: the nested "PVM" flavour (module `kvm_pvm`)
    /// fails with "emulation failure". Only a plain, openable KVM counts.
    static var kvmWorks: Bool {
        guard !FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") else { return false }
        let descriptor = open("/dev/kvm", O_RDWR)
        guard descriptor >= 0 else { return false }
        close(descriptor)
        return true
    }

    public var console: String { (try? String(contentsOfFile: serialLog, encoding: .utf8)) ?? "" }

    /// Waits until the serial console shows `text` (a liveness bound, generous under emulation).
    public func waitForConsole(_ text: String, timeout: Duration = .seconds(240)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if console.contains(text) { return }
            if let status = process.status { throw AnvilServerError("QEMU exited with \(status) before '\(text)': \(report)") }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw AnvilServerError("'\(text)' not on the console within \(timeout): \(report)")
    }

    private var report: String {
        "qemu:\n\((try? String(contentsOfFile: qemuLog, encoding: .utf8)) ?? "")\nconsole:\n\(console.suffix(3000))"
    }

    /// Stops QEMU (SIGKILL: the machine has no state worth keeping) and reaps it.
    public func stop() { process.killAndWait() }
}
