import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// The admin API's certificate: configured files, or a self-signed one made on first start and reused.
enum AdminTLSMaterial {
    static func serverConfiguration(certificatePEM: String, privateKeyPEM: String) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// Loads the generated certificate from the data directory, creating it (and its key, 0600) if absent.
    static func loadOrCreate(in data: DataDirectory, names: [String]) throws -> (certificate: String, privateKey: String) {
        let manager = FileManager.default
        if manager.fileExists(atPath: data.adminCertificate), manager.fileExists(atPath: data.adminPrivateKey) {
            return (try String(contentsOfFile: data.adminCertificate, encoding: .utf8), try String(contentsOfFile: data.adminPrivateKey, encoding: .utf8))
        }
        let generated = try makeCertificateChain(names: names)
        try DataDirectory.writeSecret(generated.privateKey, to: data.adminPrivateKey)
        try generated.authority.write(toFile: data.certificateAuthority, atomically: true, encoding: .utf8)
        try (generated.certificate + generated.authority).write(toFile: data.adminCertificate, atomically: true, encoding: .utf8)
        return (generated.certificate + generated.authority, generated.privateKey)
    }

    /// A one-off CA (its key is discarded once it has signed) and an ECDSA P-256 server certificate for
    /// `names` (DNS names and IP addresses), both valid for ten years. Clients trust the CA certificate.
    /// A two-level chain because BoringSSL refuses a self-signed leaf as its own trust anchor.
    static func makeCertificateChain(names: [String]) throws -> (authority: String, certificate: String, privateKey: String) {
        let now = Date()
        let notBefore = now.addingTimeInterval(-3600)
        let notAfter = now.addingTimeInterval(10 * 365 * 86400)
        let authorityKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let authorityName = try DistinguishedName {
            OrganizationName("Anvil")
            CommonName("Anvil admin API CA \(UUID().uuidString.prefix(8))")
        }
        let authority = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: authorityKey.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: authorityName, subject: authorityName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: authorityKey)

        let serverKey = P256.Signing.PrivateKey()
        let serverName = try DistinguishedName {
            OrganizationName("Anvil")
            CommonName("Anvil admin API")
        }
        let server = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(serverKey.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: authorityName, subject: serverName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(alternativeNames(names))
            },
            issuerPrivateKey: authorityKey)
        return (try authority.serializeAsPEM().pemString + "\n", try server.serializeAsPEM().pemString + "\n", serverKey.pemRepresentation)
    }

    private static func alternativeNames(_ names: [String]) -> [GeneralName] {
        Set(names).sorted().compactMap { name in
            if let bytes = ipv4Bytes(name) { return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))) }
            if name == "::1" { return .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1]))) }
            return name.contains(":") || name.isEmpty ? nil : .dnsName(name)
        }
    }

    private static func ipv4Bytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".")
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}
