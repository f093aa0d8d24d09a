#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Keeps errors that concern one peer (an ICMP "port unreachable" for an earlier reply comes back
/// as ECONNREFUSED on the next read) from ending a listener's inbound stream, and with it the service.
public final class TransientDatagramErrorFilter: ChannelInboundHandler, Sendable {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias InboundOut = AddressedEnvelope<ByteBuffer>

    public init() {}

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) { return }
        context.fireErrorCaught(error)
    }
}
