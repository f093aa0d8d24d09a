import Crypto
import Foundation
import ProvisioningModel
#if canImport(Glibc)
import Glibc
#endif

/// The appliance's state on disk. Everything Anvil writes lives here.
public struct DataDirectory: Sendable {
    public let url: URL

    public init(path: String) throws {
        url = URL(fileURLWithPath: path).standardizedFileURL
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        try FileManager.default.createDirectory(at: tlsDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    public var inventoryDatabase: String { url.appendingPathComponent("inventory.db").path }
    /// The first admin token's secret, readable by the owner only.
    public var adminTokenFile: String { url.appendingPathComponent("admin.token").path }
    public var tlsDirectory: URL { url.appendingPathComponent("tls") }
    /// The CA that signed the generated admin certificate: what clients trust.
    public var certificateAuthority: String { tlsDirectory.appendingPathComponent("ca.pem").path }
    public var adminCertificate: String { tlsDirectory.appendingPathComponent("admin-cert.pem").path }
    public var adminPrivateKey: String { tlsDirectory.appendingPathComponent("admin-key.pem").path }

    /// The key machine tokens are signed with; created on first start. Deleting it revokes every machine token.
    public var machineTokenKeyFile: String { url.appendingPathComponent("machine-token.key").path }

    public func machineTokenKey() throws -> SymmetricKey { try key(at: machineTokenKeyFile) }

    /// The key BMC passwords are sealed with, apart from the database so a copy of inventory.db
    /// alone reveals none. Losing it means entering the BMC passwords again.
    public var bmcSecretKeyFile: String { url.appendingPathComponent("bmc-secret.key").path }

    public func bmcSecretKey() throws -> SymmetricKey { try key(at: bmcSecretKeyFile) }

    /// FreeIPMI's SDR cache (sensor definitions, one file per BMC).
    public var sdrCacheDirectory: String { url.appendingPathComponent("sdr-cache").path }

    /// A 256-bit key kept in `path`, created on first use.
    private func key(at path: String) throws -> SymmetricKey {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32
        {
            return SymmetricKey(data: bytes)
        }
        let key = SymmetricKey(size: .bits256)
        try Self.writeSecret(key.withUnsafeBytes { Data($0) }.base64EncodedString() + "\n", to: path)
        return key
    }

    /// Writes `contents` so that no other user can ever read it (created 0600, then renamed into place).
    static func writeSecret(_ contents: String, to path: String) throws {
        let temporary = path + ".tmp"
        FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        try handle.write(contentsOf: Data(contents.utf8))
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}
