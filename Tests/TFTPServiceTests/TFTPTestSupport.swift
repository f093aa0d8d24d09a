import ApplianceTesting
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import ProvisioningModel
import ServiceLifecycle
import Synchronization
import TFTPService
import TFTPWire

/// Files every interop test serves: the sizes at the block edges the issue names, a file that rolls
/// block numbers over at 512-byte blocks (40 MiB), and a text file for netascii.
enum TestFiles {
    static let sizes: [String: Int] = [
        "empty.bin": 0, "511.bin": 511, "512.bin": 512, "1m.bin": 1 << 20, "40m.bin": 40 << 20,
    ]

    /// Deterministic, incompressible-looking content, different per file.
    static func content(size: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            for index in 0..<size {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                buffer[index] = UInt8(truncatingIfNeeded: state)
            }
            initialized = size
        }
    }

    static let text = Array(String(repeating: "line one\nline two\r\nbare\rcarriage\n", count: 200).utf8)

    /// Writes the files into `directory/root` and returns the root; the 40 MiB file only when asked for.
    static func populate(_ directory: TemporaryDirectory, large: Bool = false) throws -> String {
        let root = directory.file("root")
        try FileManager.default.createDirectory(atPath: root + "/pxelinux.cfg", withIntermediateDirectories: true)
        for (index, (name, size)) in sizes.sorted(by: { $0.key < $1.key }).enumerated() where large || size < 40 << 20 {
            try Data(content(size: size, seed: UInt64(index + 1))).write(to: URL(fileURLWithPath: root + "/" + name))
        }
        try Data(text).write(to: URL(fileURLWithPath: root + "/notes.txt"))
        try Data("default local\n".utf8).write(to: URL(fileURLWithPath: root + "/pxelinux.cfg/default"))
        return root
    }

    static func bytes(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { [UInt8]($0) } }
}

/// A TFTP service on 127.0.0.1 (port chosen by the kernel) in a ServiceGroup, stopped gracefully at the end.
struct TFTPTestServer {
    let port: Int
    let root: String

    static func with<T: Sendable>(
        root: String, configuration: TFTPService.Configuration = .init(host: "127.0.0.1", port: 0),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        _ body: @Sendable (TFTPTestServer) async throws -> T
    ) async throws -> T {
        var configuration = configuration
        configuration.host = "127.0.0.1"
        configuration.port = 0
        let logger = Logger(label: "test.tftp")
        let (addresses, continuation) = AsyncStream.makeStream(of: SocketAddress.self)
        let service = TFTPService(
            configuration: configuration, source: DirectoryBootFileSource(root: root), logger: logger,
            metricsFactory: metricsFactory, onListening: { continuation.yield($0) })
        let group = ServiceGroup(services: [service], logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // A service that fails before listening ends the stream, so the wait below cannot hang.
                defer { continuation.finish() }
                try await group.run()
            }
            var iterator = addresses.makeAsyncIterator()
            guard let address = await iterator.next(), let port = address.port else {
                try await tasks.waitForAll()
                throw AnvilServerError("TFTP did not listen")
            }
            do {
                let result = try await body(TFTPTestServer(port: port, root: root))
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }
}

/// A raw UDP socket on 127.0.0.1 for hand-made packets: sends bytes, collects what comes back.
final class UDPPeer: Sendable {
    struct Datagram: Sendable {
        var bytes: [UInt8]
        var port: Int
        var packet: TFTPPacket? { try? TFTPPacket(decoding: ByteBuffer(bytes: bytes)) }
    }

    private final class Inbox: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let received = Mutex<[Datagram]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            let datagram = Datagram(bytes: Array(envelope.data.readableBytesView), port: envelope.remoteAddress.port ?? 0)
            received.withLock { $0.append(datagram) }
        }
    }

    private let channel: any Channel
    private let inbox: Inbox

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func bind() async throws -> UDPPeer {
        let inbox = Inbox()
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(inbox) } }
            .bind(host: "127.0.0.1", port: 0).get()
        return UDPPeer(channel: channel, inbox: inbox)
    }

    var port: Int { channel.localAddress?.port ?? 0 }

    func send(_ bytes: [UInt8], to port: Int) async throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
    }

    func send(_ packet: TFTPPacket, to port: Int) async throws {
        try await send(Array(packet.encoded().readableBytesView), to: port)
    }

    /// The next datagram, or nil when none arrives within `timeout`.
    func receive(timeout: Duration = .seconds(5)) async throws -> Datagram? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let next = inbox.received.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            if let next { return next }
            try await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    /// Runs a whole read transfer (lock-step, ACKing every block) after `request`; returns the bytes.
    func fetch(_ request: TFTPRequest, from serverPort: Int, blockLimit: Int = 200_000) async throws -> (bytes: [UInt8], transferPort: Int) {
        try await send(.readRequest(request), to: serverPort)
        var bytes: [UInt8] = []
        var transferPort = 0
        var blockSize = 512
        var expected: UInt16 = 1
        for _ in 0..<blockLimit {
            guard let datagram = try await receive() else { throw AnvilServerError("no answer after \(bytes.count) bytes") }
            transferPort = datagram.port
            switch datagram.packet {
            case .optionAcknowledgement(let options):
                blockSize = options.first { $0.name == "blksize" }.flatMap { Int($0.value) } ?? blockSize
                try await send(.acknowledgement(block: 0), to: transferPort)
            case .data(let block, let payload):
                // A block seen before is the server retransmitting (it timed out on a loaded machine): ACK it again, keep it once.
                try await send(.acknowledgement(block: block), to: transferPort)
                guard block == expected else { continue }
                expected &+= 1
                bytes += payload.readableBytesView
                if payload.readableBytes < blockSize { return (bytes, transferPort) }
            case .error(let code, let message):
                throw AnvilServerError("server sent error \(code.rawValue): \(message)")
            default:
                throw AnvilServerError("unexpected \(datagram.bytes)")
            }
        }
        throw AnvilServerError("more than \(blockLimit) blocks")
    }

    func close() { channel.close(promise: nil) }
}

