import Crypto
import Foundation

/// A machine's credential: good only for that machine's own endpoints, until it expires.
/// Self-contained (machine id, expiry and an HMAC under the appliance's key), so issuing one for
/// every rendered script costs no database write, and checking one costs no read.
/// Format: `m1.<machine id>.<expiry, Unix seconds>.<base64url HMAC-SHA256>`.
public struct MachineTokenAuthority: Sendable {
    private let key: SymmetricKey

    public init(key: SymmetricKey) {
        self.key = key
    }

    /// A fresh 256-bit key, for the data directory.
    public static func generateKey() -> SymmetricKey { SymmetricKey(size: .bits256) }

    public func issue(for machine: ObjectID, validFor lifetime: TimeInterval, now: Date) -> String {
        let payload = "m1.\(machine).\(Int64((now + lifetime).timeIntervalSince1970))"
        return payload + "." + signature(of: payload)
    }

    public enum Refusal: Error, Sendable, Equatable {
        case malformed
        case badSignature
        case expired
    }

    /// The machine the token was issued for, if it is genuine and current.
    public func verify(_ token: String, now: Date) -> Result<ObjectID, Refusal> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "m1", let machine = ObjectID(String(parts[1])), let expiry = Int64(parts[2]) else {
            return .failure(.malformed)
        }
        let payload = parts[0...2].joined(separator: ".")
        guard let mac = Data(base64URL: String(parts[3])),
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(payload.utf8), using: key)
        else { return .failure(.badSignature) }
        guard Double(expiry) > now.timeIntervalSince1970 else { return .failure(.expired) }
        return .success(machine)
    }

    private func signature(of payload: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(payload.utf8), using: key)).base64URLEncodedString()
    }
}

extension Data {
    func base64URLEncodedString() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: base64)
    }
}
