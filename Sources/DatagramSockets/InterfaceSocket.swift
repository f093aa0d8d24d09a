#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Ties a bound UDP channel to one network interface (`SO_BINDTODEVICE`). DHCP needs this: its
/// sockets listen on `0.0.0.0`, one per interface sharing the port, and a broadcast reply must
/// leave through the link the request came in on.
public enum InterfaceSocket {
    public struct BindError: Error, CustomStringConvertible {
        public var interface: String
        public var cause: any Error

        public var description: String {
            let hint = (cause as? IOError).map { [EPERM, EACCES].contains($0.errnoCode) } == true ? " (needs root or CAP_NET_RAW)" : ""
            return "cannot bind a socket to interface \(interface): \(cause)\(hint)"
        }
    }

    /// `IFNAMSIZ` bytes, NUL-terminated, as the kernel reads the option.
    typealias InterfaceName = (
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
    )

    public static func bind(_ channel: any Channel, to interface: String) async throws {
        guard let provider = channel as? any SocketOptionProvider else {
            throw BindError(interface: interface, cause: ChannelError.operationUnsupported)
        }
        let bytes = Array(interface.utf8)
        guard !bytes.isEmpty, bytes.count < 16 else { throw BindError(interface: interface, cause: IOError(errnoCode: EINVAL, reason: "interface name")) }
        var name: InterfaceName = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &name) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        do {
            try await provider.unsafeSetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_BINDTODEVICE), value: name).get()
        } catch {
            throw BindError(interface: interface, cause: error)
        }
    }
}
