import Foundation
import NetworkPrimitives
import ProvisioningModel

/// Small, valid objects for tests; change what the test is about and keep the rest.
public enum Fixtures {
    /// A MAC in QEMU's locally administered range, distinct per `index`.
    public static func mac(_ index: Int) -> MACAddress {
        MACAddress(0x52, 0x54, 0x00, UInt8((index >> 16) & 0xff), UInt8((index >> 8) & 0xff), UInt8(index & 0xff))
    }

    public static func machine(_ index: Int = 1, state: MachineState = .discovered, bootEnv: String = "discovery") -> Machine {
        Machine(
            name: "node\(index)", state: state, bootEnv: bootEnv,
            facts: HardwareFacts(systemVendor: "QEMU", systemSerial: "SN\(index)", systemUUID: UUID().uuidString, memoryBytes: 512 << 20),
            interfaces: [NetworkInterface(mac: mac(index), name: "eth0", boot: true)])
    }

    /// The boot environments every machine can point at (the store checks references).
    public static let bootEnvs: [BootEnv] = [
        BootEnv(name: "discovery", description: "Discovery image"),
        BootEnv(name: "local", description: "Boot from the first disk"),
    ]

    public static func subnet(_ name: String = "lab") -> Subnet {
        Subnet(
            name: name, network: IPv4Network("10.99.0.0/24")!, rangeStart: IPv4Address("10.99.0.100"),
            rangeEnd: IPv4Address("10.99.0.200"), router: IPv4Address("10.99.0.1"))
    }
}
