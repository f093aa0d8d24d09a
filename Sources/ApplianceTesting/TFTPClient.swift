import Foundation

/// Runs real TFTP client programs.
public enum TFTPClient: String, CaseIterable, Sendable, CustomStringConvertible {
    case tftpHPA = "tftp"
    case atftp
    case curl

    public var description: String { rawValue }

    /// The command line that fetches `remote` from `host:port` into `local`.
    public func arguments(remote: String, local: String, host: String = "127.0.0.1", port: Int, blockSize: Int? = nil, windowSize: Int? = nil, netascii: Bool = false) -> [String] {
        switch self {
        case .tftpHPA:
            // tftp-hpa's client sends no options: plain RFC 1350 with 512-byte blocks.
            return [host, "\(port)", "-m", netascii ? "netascii" : "binary", "-c", "get", remote, local]
        case .atftp:
            var arguments = ["--get", "--remote-file", remote, "--local-file", local, "--option", "tsize 0"]
            if let blockSize { arguments += ["--option", "blksize \(blockSize)"] }
            if let windowSize { arguments += ["--option", "windowsize \(windowSize)"] }
            if netascii { arguments += ["--option", "mode netascii"] }
            return arguments + [host, "\(port)"]
        case .curl:
            var arguments = ["--silent", "--show-error", "--max-time", "120", "--output", local]
            if let blockSize { arguments += ["--tftp-blksize", "\(blockSize)"] }
            return arguments + ["tftp://\(host):\(port)/\(remote)"]
        }
    }

    public var executable: String {
        switch self {
        case .tftpHPA: "/usr/bin/tftp"
        case .atftp: "/usr/bin/atftp"
        case .curl: "/usr/bin/curl"
        }
    }

    /// Fetches `remote` from `host:port` into `local`; `namespace` runs the client inside it.
    public func fetch(
        _ remote: String, into local: String, host: String = "127.0.0.1", port: Int, blockSize: Int? = nil, windowSize: Int? = nil,
        netascii: Bool = false, in namespace: NetworkNamespace? = nil
    ) async throws -> AnvilServer.CLIResult {
        let command = [executable] + arguments(
            remote: remote, local: local, host: host, port: port, blockSize: blockSize, windowSize: windowSize, netascii: netascii)
        let wrapped = namespace?.wrap(command) ?? command
        return try await AnvilServer.run(wrapped[0], Array(wrapped.dropFirst()))
    }
}
