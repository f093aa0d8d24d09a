import Foundation

/// A machine's `/sys`, `/proc` and `/dev` as files, plus stand-ins for dmidecode, smartctl and
/// ipmitool that print captured output: what the agent reads, without the hardware.
public struct FakeSystemRoot: Sendable {
    public struct Disk: Sendable {
        public var name: String
        public var sectors: Int64
        public var model: String?
        /// virtio and NVMe expose it in sysfs; SATA disks only through smartctl.
        public var sysfsSerial: String?
        public var smartctlSerial: String?
        public var rotational: Bool
        public var wwid: String?

        public init(name: String, sectors: Int64, model: String? = nil, sysfsSerial: String? = nil, smartctlSerial: String? = nil, rotational: Bool = false, wwid: String? = nil) {
            self.name = name
            self.sectors = sectors
            self.model = model
            self.sysfsSerial = sysfsSerial
            self.smartctlSerial = smartctlSerial
            self.rotational = rotational
            self.wwid = wwid
        }
    }

    public struct NIC: Sendable {
        public var name: String
        public var mac: String
        public var driver: String
        public var pciAddress: String
        public var carrier: Bool
        public var speed: Int

        public init(name: String, mac: String, driver: String, pciAddress: String, carrier: Bool = true, speed: Int = 10000) {
            self.name = name
            self.mac = mac
            self.driver = driver
            self.pciAddress = pciAddress
            self.carrier = carrier
            self.speed = speed
        }
    }

    public var dmi: [String: String]
    public var cpuinfo: String
    public var meminfoKiB: Int64
    public var dmidecodeType17: String?
    public var disks: [Disk]
    public var nics: [NIC]
    /// `ipmitool lan print 1` output; nil for a machine without a BMC device.
    public var ipmiLAN: String?

    public init(dmi: [String: String], cpuinfo: String, meminfoKiB: Int64, dmidecodeType17: String?, disks: [Disk], nics: [NIC], ipmiLAN: String?) {
        self.dmi = dmi
        self.cpuinfo = cpuinfo
        self.meminfoKiB = meminfoKiB
        self.dmidecodeType17 = dmidecodeType17
        self.disks = disks
        self.nics = nics
        self.ipmiLAN = ipmiLAN
    }

    /// `cpuinfo` for `sockets` × `cores` with two threads per core.
    public static func cpuinfo(model: String, sockets: Int, cores: Int) -> String {
        var text = ""
        var processor = 0
        for socket in 0..<sockets {
            for _ in 0..<(cores * 2) {
                text += "processor\t: \(processor)\nmodel name\t: \(model)\nphysical id\t: \(socket)\ncpu cores\t: \(cores)\n\n"
                processor += 1
            }
        }
        return text
    }

    /// Writes the tree under `root`; returns the environment that points the agent at it.
    public func write(to root: String) throws -> [String: String] {
        let files = FileManager.default
        func put(_ path: String, _ contents: String) throws {
            let url = URL(fileURLWithPath: root + "/" + path)
            try files.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url, atomically: true, encoding: .utf8)
        }
        func link(_ path: String, to target: String) throws {
            let url = URL(fileURLWithPath: root + "/" + path)
            try files.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? files.removeItem(at: url)
            try files.createSymbolicLink(atPath: url.path, withDestinationPath: target)
        }
        for (name, value) in dmi { try put("sys/class/dmi/id/\(name)", value + "\n") }
        try put("proc/cpuinfo", cpuinfo)
        try put("proc/meminfo", "MemTotal:       \(meminfoKiB) kB\nMemFree:        1024 kB\n")
        try put("proc/cmdline", "quiet\n")
        for disk in disks {
            let base = "sys/block/\(disk.name)"
            try put(base + "/size", "\(disk.sectors)\n")
            try put(base + "/queue/rotational", disk.rotational ? "1\n" : "0\n")
            if let model = disk.model { try put(base + "/device/model", model + "    \n") }
            if let serial = disk.sysfsSerial { try put(base + "/device/serial", serial + "\n") }
            if let wwid = disk.wwid { try put(base + "/device/wwid", wwid + "\n") }
        }
        for nic in nics {
            let device = "sys/devices/pci0000:00/\(nic.pciAddress)"
            try put(device + "/vendor", "0x8086\n")
            try put(device + "/device", "0x1572\n")
            try put(device + "/class", "0x020000\n")
            try link(device + "/driver", to: "../../../bus/pci/drivers/\(nic.driver)")
            try files.createDirectory(atPath: root + "/sys/bus/pci/drivers/\(nic.driver)", withIntermediateDirectories: true)
            try link("sys/bus/pci/devices/\(nic.pciAddress)", to: "../../../devices/pci0000:00/\(nic.pciAddress)")
            let net = "sys/class/net/\(nic.name)"
            try put(net + "/address", nic.mac + "\n")
            try put(net + "/carrier", nic.carrier ? "1\n" : "0\n")
            try put(net + "/speed", nic.carrier ? "\(nic.speed)\n" : "-1\n")
            try link(net + "/device", to: "../../../devices/pci0000:00/\(nic.pciAddress)")
        }
        // Virtual interfaces have no device link and are not hardware.
        try put("sys/class/net/lo/address", "00:00:00:00:00:00\n")

        var environment = ["ANVIL_SYSROOT": root, "ANVIL_MACHINE_ARCH": "x86_64"]
        let tools = root + "/tools"
        try files.createDirectory(atPath: tools, withIntermediateDirectories: true)
        func tool(_ name: String, _ script: String) throws -> String {
            let path = tools + "/" + name
            try ("#!/bin/sh\n" + script).write(toFile: path, atomically: true, encoding: .utf8)
            try files.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            return path
        }
        if let type17 = dmidecodeType17 {
            try put("dmidecode-t17.txt", type17)
            environment["ANVIL_DMIDECODE"] = try tool("dmidecode", "[ \"$*\" = \"-t 17\" ] && exec cat \(root)/dmidecode-t17.txt\nexit 1\n")
        } else {
            environment["ANVIL_DMIDECODE"] = tools + "/no-dmidecode"
        }
        var smartctl = "case \"$2\" in\n"
        for disk in disks { if let serial = disk.smartctlSerial { smartctl += "/dev/\(disk.name)) echo 'Serial Number:    \(serial)' ;;\n" } }
        environment["ANVIL_SMARTCTL"] = try tool("smartctl", smartctl + "*) exit 1 ;;\nesac\n")
        if let lan = ipmiLAN {
            try put("dev/ipmi0", "")
            try put("ipmi-lan.txt", lan)
            environment["ANVIL_IPMITOOL"] = try tool("ipmitool", "exec cat \(root)/ipmi-lan.txt\n")
        } else {
            environment["ANVIL_IPMITOOL"] = tools + "/no-ipmitool"
        }
        return environment
    }
}
