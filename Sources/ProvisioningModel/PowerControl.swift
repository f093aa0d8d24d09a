import Foundation

/// What an admin or a workflow asks a machine's power controller to do.
public enum PowerAction: String, Codable, Sendable, CaseIterable {
    case status
    case on
    /// Hard power off (the button held down).
    case off
    /// Soft off: an ACPI power-button press; the OS shuts down on its own.
    case softOff = "soft-off"
    case cycle
    case reset
    /// Blink the chassis identify light.
    case identify
}

/// A one-off or persistent override of what the machine boots from next.
public struct BootOverride: Codable, Sendable, Hashable {
    public enum Device: String, Codable, Sendable { case pxe, disk }
    public enum Firmware: String, Codable, Sendable { case bios, uefi }

    public var device: Device
    public var firmware: Firmware
    /// False: the next boot only (what reimaging wants); true: every boot until changed.
    public var persistent: Bool

    public init(device: Device, firmware: Firmware = .bios, persistent: Bool = false) {
        self.device = device
        self.firmware = firmware
        self.persistent = persistent
    }
}

public enum PowerState: String, Codable, Sendable { case on, off }

/// How to reach one BMC, credentials included. Lives only in memory: stored sealed, never encoded,
/// and its description leaves the password out so no log line can carry it.
public struct BMCEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var address: String
    public var port: Int
    public var username: String
    public var password: String
    public var cipherSuite: UInt8
    /// FreeIPMI workaround names for BMC quirks (`opensesspriv`, `authcap`, `intel20`, `supermicro20`, `sun20`, `integritycheckvalue`).
    public var workarounds: [String]

    public init(
        address: String, port: Int = 623, username: String, password: String, cipherSuite: UInt8 = 17, workarounds: [String] = []
    ) {
        self.address = address
        self.port = port
        self.username = username
        self.password = password
        self.cipherSuite = cipherSuite
        self.workarounds = workarounds
    }

    /// `address:port`, the BMC's name in messages and the key that serializes its commands.
    public var name: String { "\(address):\(port)" }
    public var description: String { "BMC \(name) (user \(username), cipher suite \(cipherSuite))" }

    /// Cipher suites Anvil speaks: 17 (HMAC-SHA256, AES-CBC-128) by default, 3 (HMAC-SHA1, AES) for
    /// older BMCs. 0 (no authentication) and the other weak ones are refused.
    public static let allowedCipherSuites: Set<UInt8> = [17, 3]
    public static let knownWorkarounds: Set<String> = [
        "opensesspriv", "authcap", "intel20", "supermicro20", "sun20", "integritycheckvalue",
    ]
}

/// Facts a BMC reports about itself.
public struct BMCInfo: Codable, Sendable, Hashable {
    public var deviceID: Int
    public var firmwareVersion: String
    public var ipmiVersion: String
    /// IANA enterprise number of the manufacturer.
    public var manufacturerID: Int
    public var productID: Int

    public init(deviceID: Int, firmwareVersion: String, ipmiVersion: String, manufacturerID: Int, productID: Int) {
        self.deviceID = deviceID
        self.firmwareVersion = firmwareVersion
        self.ipmiVersion = ipmiVersion
        self.manufacturerID = manufacturerID
        self.productID = productID
    }
}

/// One sensor as the BMC reports it.
public struct SensorReading: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable { case temperature, voltage, fan, powerSupply = "power-supply", other }
    public enum State: String, Codable, Sendable { case nominal, warning, critical, unknown }

    public var recordID: Int
    public var name: String
    public var kind: Kind
    public var state: State
    /// Absent for discrete sensors (a power supply's presence) and unreadable ones.
    public var value: Double?
    /// `C`, `V`, `RPM`, `W`…; absent when the sensor has no unit.
    public var unit: String?
    /// For discrete sensors: the asserted states, in the BMC's words (`Presence detected`).
    public var events: [String]

    public init(recordID: Int, name: String, kind: Kind, state: State, value: Double?, unit: String?, events: [String] = []) {
        self.recordID = recordID
        self.name = name
        self.kind = kind
        self.state = state
        self.value = value
        self.unit = unit
        self.events = events
    }
}

/// Why a power command failed, named for the admin who has to fix it. Every case names the BMC.
public struct PowerError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Codable, Sendable {
        /// Wrong username or password, or the user lacks the privilege.
        case authenticationFailed = "authentication-failed"
        /// No answer, or the address cannot be reached.
        case unreachable
        /// A session was open but the command got no answer in time.
        case timeout
        /// The BMC does not support the command or the cipher suite.
        case unsupported
        /// Anvil refused to send it (cipher suite 0, unknown workaround).
        case refused
        /// The BMC answered with an error.
        case failed
    }

    public var code: Code
    public var bmc: String
    public var reason: String
    /// Asking again may succeed: no answer, busy, or an unspecified error from the BMC.
    public var transient: Bool

    public init(_ code: Code, bmc: String, _ reason: String, transient: Bool = false) {
        self.code = code
        self.bmc = bmc
        self.reason = reason
        self.transient = transient
    }

    public var description: String { "\(bmc): \(reason)" }
}

/// Drives BMCs. Implementations serialize the commands to one BMC and never block the caller's thread.
public protocol PowerControl: Sendable {
    /// Performs the action; returns the power state after it (for `status`, the state now).
    func perform(_ action: PowerAction, on bmc: BMCEndpoint) async throws(PowerError) -> PowerState?
    func setNextBoot(_ boot: BootOverride, on bmc: BMCEndpoint) async throws(PowerError)
    func info(of bmc: BMCEndpoint) async throws(PowerError) -> BMCInfo
    func sensors(of bmc: BMCEndpoint) async throws(PowerError) -> [SensorReading]
}
