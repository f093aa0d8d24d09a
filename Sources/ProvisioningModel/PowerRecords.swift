import Crypto
import Foundation
import NetworkPrimitives

/// A machine's BMC as the store keeps it: the password sealed under the appliance's secret key
/// (`SecretBox`), so neither the database file nor a backup of it reveals it.
public struct StoredBMCCredential: Sendable, Hashable {
    public var machine: ObjectID
    public var address: String
    public var port: Int
    public var username: String
    public var sealedPassword: Data
    public var cipherSuite: UInt8
    public var workarounds: [String]
    /// What the machine should be, from the last successful on/off/cycle: a periodic sync that finds
    /// otherwise records drift.
    public var expectedPower: PowerState?
    public var observedPower: PowerState?
    public var observedAt: Date?
    public var updatedAt: Date

    public init(
        machine: ObjectID, address: String, port: Int, username: String, sealedPassword: Data, cipherSuite: UInt8,
        workarounds: [String],
        expectedPower: PowerState? = nil, observedPower: PowerState? = nil, observedAt: Date? = nil, updatedAt: Date
    ) {
        self.machine = machine
        self.address = address
        self.port = port
        self.username = username
        self.sealedPassword = sealedPassword
        self.cipherSuite = cipherSuite
        self.workarounds = workarounds
        self.expectedPower = expectedPower
        self.observedPower = observedPower
        self.observedAt = observedAt
        self.updatedAt = updatedAt
    }
}

/// Credentials for every BMC in a network: a machine whose agent reports a BMC address inside
/// `network` gets these attached automatically (when it has no BMC yet).
public struct StoredBMCCredentialSet: Sendable, Hashable {
    public var name: String
    public var network: IPv4Network
    public var port: Int
    public var username: String
    public var sealedPassword: Data
    public var cipherSuite: UInt8
    public var workarounds: [String]
    public var updatedAt: Date

    public init(
        name: String, network: IPv4Network, port: Int, username: String, sealedPassword: Data, cipherSuite: UInt8,
        workarounds: [String],
        updatedAt: Date
    ) {
        self.name = name
        self.network = network
        self.port = port
        self.username = username
        self.sealedPassword = sealedPassword
        self.cipherSuite = cipherSuite
        self.workarounds = workarounds
        self.updatedAt = updatedAt
    }
}

/// One power command against one machine, as recorded (`anvil power …`, a workflow, the sync).
public struct PowerOperationRecord: Codable, Sendable, Hashable {
    public enum Outcome: String, Codable, Sendable {
        case success
        case authenticationFailed = "authentication-failed"
        case unreachable, timeout, unsupported, refused, failed
        /// The machine has no BMC: an operator was asked to do it by hand.
        case manual

        init(_ code: PowerError.Code) {
            switch code {
            case .authenticationFailed: self = .authenticationFailed
            case .unreachable: self = .unreachable
            case .timeout: self = .timeout
            case .unsupported: self = .unsupported
            case .refused: self = .refused
            case .failed: self = .failed
            }
        }
    }

    public var id: ObjectID
    public var machine: ObjectID
    /// `on`, `off`, `cycle`…, or `boot-pxe` / `boot-disk` for a next-boot override.
    public var action: String
    public var requestedBy: String
    public var startedAt: Date
    public var finishedAt: Date
    public var outcome: Outcome
    /// The power state the BMC reported after the command.
    public var state: PowerState?
    public var message: String?

    public init(
        id: ObjectID = ObjectID(), machine: ObjectID, action: String, requestedBy: String, startedAt: Date, finishedAt: Date,
        outcome: Outcome, state: PowerState?, message: String?
    ) {
        self.id = id
        self.machine = machine
        self.action = action
        self.requestedBy = requestedBy
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outcome = outcome
        self.state = state
        self.message = message
    }
}

/// A machine's latest sensor readings.
public struct SensorSnapshot: Codable, Sendable, Hashable {
    public var machine: ObjectID
    public var readAt: Date
    public var readings: [SensorReading]

    public init(machine: ObjectID, readAt: Date, readings: [SensorReading]) {
        self.machine = machine
        self.readAt = readAt
        self.readings = readings
    }
}

/// Seals secrets (BMC passwords) with AES-GCM under a key kept in the data directory, apart from the database.
public struct SecretBox: Sendable {
    private let key: SymmetricKey

    public init(key: SymmetricKey) { self.key = key }

    public func seal(_ secret: String) throws -> Data {
        guard let combined = try AES.GCM.seal(Data(secret.utf8), using: key).combined else {
            throw InventoryError.storage("AES-GCM produced no sealed box")
        }
        return combined
    }

    public func open(_ sealed: Data) throws -> String {
        let plain = try AES.GCM.open(try AES.GCM.SealedBox(combined: sealed), using: key)
        return String(decoding: plain, as: UTF8.self)
    }
}
