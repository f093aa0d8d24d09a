import Foundation
import NetworkPrimitives

/// What the machine reported about its hardware (the agent fills this in at call-home).
/// Every field is optional: a missing tool or an unreadable table leaves it out, never a guess.
public struct HardwareFacts: Codable, Sendable, Hashable {
    public var systemVendor: String?
    public var systemProduct: String?
    public var systemSerial: String?
    /// SMBIOS system UUID: the strongest identity a machine has.
    public var systemUUID: String?
    public var boardVendor: String?
    public var boardProduct: String?
    public var boardSerial: String?
    public var chassisType: String?
    public var chassisSerial: String?
    public var biosVendor: String?
    public var biosVersion: String?
    public var cpuModel: String?
    public var cpuSockets: Int?
    public var cpuCores: Int?
    public var cpuThreads: Int?
    /// Installed memory: the DIMMs' sum when the SMBIOS table lists them, else what the OS sees.
    public var memoryBytes: Int64?
    public var memoryModules: [MemoryModuleFacts]
    public var disks: [DiskFacts]
    public var nics: [NICFacts]
    public var pciDevices: [PCIDeviceFacts]
    /// The BMC's LAN settings, when the machine has an IPMI device.
    public var bmc: BMCFacts?

    public init(
        systemVendor: String? = nil, systemProduct: String? = nil, systemSerial: String? = nil,
        systemUUID: String? = nil, cpuModel: String? = nil, cpuSockets: Int? = nil, cpuCores: Int? = nil,
        cpuThreads: Int? = nil, memoryBytes: Int64? = nil, disks: [DiskFacts] = [], nics: [NICFacts] = []
    ) {
        self.systemVendor = systemVendor
        self.systemProduct = systemProduct
        self.systemSerial = systemSerial
        self.systemUUID = systemUUID
        self.cpuModel = cpuModel
        self.cpuSockets = cpuSockets
        self.cpuCores = cpuCores
        self.cpuThreads = cpuThreads
        self.memoryBytes = memoryBytes
        self.memoryModules = []
        self.disks = disks
        self.nics = nics
        self.pciDevices = []
    }

    enum CodingKeys: String, CodingKey {
        case systemVendor, systemProduct, systemSerial, systemUUID, boardVendor, boardProduct, boardSerial
        case chassisType, chassisSerial, biosVendor, biosVersion, cpuModel, cpuSockets, cpuCores, cpuThreads
        case memoryBytes, memoryModules, disks, nics, pciDevices, bmc
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        systemVendor = try c.decodeIfPresent(String.self, forKey: .systemVendor)
        systemProduct = try c.decodeIfPresent(String.self, forKey: .systemProduct)
        systemSerial = try c.decodeIfPresent(String.self, forKey: .systemSerial)
        systemUUID = try c.decodeIfPresent(String.self, forKey: .systemUUID)
        boardVendor = try c.decodeIfPresent(String.self, forKey: .boardVendor)
        boardProduct = try c.decodeIfPresent(String.self, forKey: .boardProduct)
        boardSerial = try c.decodeIfPresent(String.self, forKey: .boardSerial)
        chassisType = try c.decodeIfPresent(String.self, forKey: .chassisType)
        chassisSerial = try c.decodeIfPresent(String.self, forKey: .chassisSerial)
        biosVendor = try c.decodeIfPresent(String.self, forKey: .biosVendor)
        biosVersion = try c.decodeIfPresent(String.self, forKey: .biosVersion)
        cpuModel = try c.decodeIfPresent(String.self, forKey: .cpuModel)
        cpuSockets = try c.decodeIfPresent(Int.self, forKey: .cpuSockets)
        cpuCores = try c.decodeIfPresent(Int.self, forKey: .cpuCores)
        cpuThreads = try c.decodeIfPresent(Int.self, forKey: .cpuThreads)
        memoryBytes = try c.decodeIfPresent(Int64.self, forKey: .memoryBytes)
        memoryModules = try c.decode(.memoryModules, default: [])
        disks = try c.decode(.disks, default: [])
        nics = try c.decode(.nics, default: [])
        pciDevices = try c.decode(.pciDevices, default: [])
        bmc = try c.decodeIfPresent(BMCFacts.self, forKey: .bmc)
    }

    func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        if let systemUUID {
            report.check(UUID(uuidString: systemUUID) != nil, "systemUUID", "'\(systemUUID)' is not a UUID")
        }
        for (field, count) in [("cpuSockets", cpuSockets), ("cpuCores", cpuCores), ("cpuThreads", cpuThreads)] {
            if let count { report.check(count > 0, field, "must be positive, got \(count)") }
        }
        if let memoryBytes { report.check(memoryBytes > 0, "memoryBytes", "must be positive, got \(memoryBytes)") }
        for (index, module) in memoryModules.enumerated() {
            report.check(module.sizeBytes > 0, "memoryModules[\(index)].sizeBytes", "must be positive")
        }
        for (index, disk) in disks.enumerated() {
            report.check(!disk.name.isEmpty, "disks[\(index)].name", "must not be empty")
            report.check(disk.sizeBytes >= 0, "disks[\(index)].sizeBytes", "must not be negative")
        }
        for (index, nic) in nics.enumerated() {
            report.check(!nic.name.isEmpty, "nics[\(index)].name", "must not be empty")
        }
        return report.problems
    }
}

/// One populated DIMM slot (SMBIOS type 17).
public struct MemoryModuleFacts: Codable, Sendable, Hashable {
    public var locator: String
    public var sizeBytes: Int64
    public var type: String?
    public var speedMTs: Int?
    public var manufacturer: String?
    public var serial: String?
    public var partNumber: String?

    public init(locator: String, sizeBytes: Int64, type: String? = nil, speedMTs: Int? = nil) {
        self.locator = locator
        self.sizeBytes = sizeBytes
        self.type = type
        self.speedMTs = speedMTs
    }
}

public struct DiskFacts: Codable, Sendable, Hashable {
    public var name: String
    public var sizeBytes: Int64
    public var model: String?
    public var serial: String?
    public var rotational: Bool?
    public var wwn: String?

    public init(name: String, sizeBytes: Int64, model: String? = nil, serial: String? = nil, rotational: Bool? = nil, wwn: String? = nil) {
        self.name = name
        self.sizeBytes = sizeBytes
        self.model = model
        self.serial = serial
        self.rotational = rotational
        self.wwn = wwn
    }
}

public struct NICFacts: Codable, Sendable, Hashable {
    public var name: String
    public var mac: MACAddress
    public var driver: String?
    /// Carrier when the agent looked; changes from boot to boot, so it is not a hardware change.
    public var link: Bool?
    public var speedMbps: Int?
    public var pciAddress: String?

    public init(name: String, mac: MACAddress, driver: String? = nil, link: Bool? = nil, speedMbps: Int? = nil, pciAddress: String? = nil) {
        self.name = name
        self.mac = mac
        self.driver = driver
        self.link = link
        self.speedMbps = speedMbps
        self.pciAddress = pciAddress
    }
}

public struct PCIDeviceFacts: Codable, Sendable, Hashable {
    public var address: String
    public var vendorID: String
    public var deviceID: String
    public var classCode: String
    public var driver: String?

    public init(address: String, vendorID: String, deviceID: String, classCode: String, driver: String? = nil) {
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.driver = driver
    }
}

/// What the host's IPMI device says about the BMC's LAN channel.
public struct BMCFacts: Codable, Sendable, Hashable {
    public var address: String?
    public var mac: MACAddress?
    public var netmask: String?
    public var gateway: String?

    public init(address: String? = nil, mac: MACAddress? = nil, netmask: String? = nil, gateway: String? = nil) {
        self.address = address
        self.mac = mac
        self.netmask = netmask
        self.gateway = gateway
    }
}
