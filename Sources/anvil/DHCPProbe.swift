import ArgumentParser
import DHCPWire
import DatagramSockets
import Foundation
import NIOCore
import NIOPosix
import NetworkPrimitives

struct DHCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dhcp", abstract: "Look at DHCP from a client's side.", subcommands: [DHCPProbeCommand.self])
}

/// Broadcasts one DHCPDISCOVER (or a PXE boot-server REQUEST) as a chosen kind of client would and
/// prints every reply: what a machine on that link would be told, by Anvil or any other server.
struct DHCPProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Send a DHCPDISCOVER from an interface and print the replies (needs root: binds port 68).",
        discussion: """
            Example: anvil dhcp probe --interface eth1 --arch 7 --vendor-class PXEClient:Arch:00007:UNDI:003016
            Nothing is requested or bound: the probe leaves no lease behind.
            """)

    @Option(help: "Interface to send from.") var interface: String
    @Option(help: "Client MAC (default: a random locally administered one).") var mac: String?
    @Option(help: "Client architecture, option 93 (0 BIOS, 7 UEFI x64, 16 UEFI HTTP…).") var arch: UInt16?
    @Option(help: "Vendor class, option 60.") var vendorClass: String?
    @Option(help: "User class, option 77 (iPXE sends 'iPXE').") var userClass: String?
    @Option(help: "Send a PXE boot-server REQUEST to this server's port 4011 instead of a broadcast DISCOVER.") var bootServer: String?
    @Option(help: "Seconds to collect replies.") var wait: Double = 3
    @Flag(help: "Print JSON lines (from, type and the decoded dump) instead of text.") var json = false

    func run() async throws {
        let mac = try mac.map { try MACAddress($0).orThrow(ValidationError("--mac '\($0)' is not a MAC address")) }
            ?? MACAddress(0x02, UInt8.random(in: 0...255), UInt8.random(in: 0...255), UInt8.random(in: 0...255), UInt8.random(in: 0...255), UInt8.random(in: 0...255))
        var message = DHCPMessage(operation: .request, transactionID: UInt32.random(in: 1...UInt32.max))
        message.clientMAC = mac
        message.isBroadcast = bootServer == nil
        message.options.set(messageType: bootServer == nil ? .discover : .request)
        message.options[.parameterRequestList] = [1, 3, 6, 15, 43, 60, 66, 67, 97, 175]
        if let arch { message.options[.clientSystemArchitecture] = [UInt8(arch >> 8), UInt8(arch & 0xff)] }
        if let vendorClass { message.options.set(.vendorClassIdentifier, string: vendorClass) }
        if let userClass { message.options.set(.userClass, string: userClass) }

        let destination = try SocketAddress(ipAddress: bootServer ?? "255.255.255.255", port: bootServer == nil ? 67 : 4011)
        let replies = AsyncStream.makeStream(of: AddressedEnvelope<ByteBuffer>.self)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ReplyCollector(replies.continuation)) }
            }
            .bind(host: "0.0.0.0", port: 68).get()
        try await InterfaceSocket.bind(channel, to: interface)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: message.encoded))
        let deadline = Task {
            try? await Task.sleep(for: .seconds(wait))
            replies.continuation.finish()
        }
        var count = 0
        for await envelope in replies.stream {
            guard let reply = try? DHCPMessage(buffer: envelope.data), reply.transactionID == message.transactionID else { continue }
            count += 1
            let type = (try? reply.messageType()).flatMap { $0.map { "\($0)" } } ?? "bootp"
            if json {
                let line = ["from": "\(envelope.remoteAddress.ipAddress ?? "?")", "type": type, "dump": reply.dump()]
                print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print("--- \(type) from \(envelope.remoteAddress.ipAddress ?? "?")\n\(reply.dump())")
            }
        }
        deadline.cancel()
        try? await channel.close()
        if !json { print("\(count) repl\(count == 1 ? "y" : "ies") to \(mac) within \(wait) s") }
        if count == 0 { throw ExitCode(1) }
    }
}

/// Hands received datagrams to the probe's stream.
private final class ReplyCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let continuation: AsyncStream<AddressedEnvelope<ByteBuffer>>.Continuation

    init(_ continuation: AsyncStream<AddressedEnvelope<ByteBuffer>>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield(unwrapInboundIn(data)) }
}

extension Optional {
    func orThrow(_ error: @autoclosure () -> any Error) throws -> Wrapped {
        guard let self else { throw error() }
        return self
    }
}
