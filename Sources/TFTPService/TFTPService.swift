import DatagramSockets
import Logging
import Metrics
import NIOCore
import NIOPosix
import ProvisioningModel
import ServiceLifecycle
import Synchronization
import TFTPWire

/// A read-only TFTP server (RFC 1350, options of RFC 2347/2348/2349/7440) for boot loaders.
/// Requests arrive on the listening socket; each accepted read gets its own socket (its TID) and
/// runs on an event loop (``TFTPTransferHandler``). Stops on graceful shutdown: the listener
/// closes and running transfers end with an ERROR to their clients.
public struct TFTPService: Service {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Transfers running at once; one more request gets "server busy".
        public var maximumTransfers: Int
        public var optionLimits: TFTPOptionLimits
        public var transfer: TFTPReadTransfer.Configuration
        /// Bytes read ahead of the window for files not held in memory.
        public var readAhead: Int

        public init(
            host: String = "0.0.0.0", port: Int = 69, maximumTransfers: Int = 512, optionLimits: TFTPOptionLimits = TFTPOptionLimits(),
            transfer: TFTPReadTransfer.Configuration = TFTPReadTransfer.Configuration(), readAhead: Int = 256 << 10
        ) {
            self.host = host
            self.port = port
            self.maximumTransfers = maximumTransfers
            self.optionLimits = optionLimits
            self.transfer = transfer
            self.readAhead = readAhead
        }
    }

    typealias ListenerChannel = NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>
    typealias Outbound = NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>

    public let configuration: Configuration
    private let source: any BootFileSource
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let metrics: TFTPMetrics
    private let onListening: @Sendable (SocketAddress) async -> Void

    public init(
        configuration: Configuration, source: any BootFileSource, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        onListening: @escaping @Sendable (SocketAddress) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.source = source
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.metrics = TFTPMetrics(factory: metricsFactory)
        self.onListening = onListening
    }

    public func run() async throws {
        let listener: ListenerChannel
        do {
            listener = try await DatagramBootstrap(group: eventLoopGroup)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.receivePacketInfo, value: true)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(TransientDatagramErrorFilter())
                        return try ListenerChannel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw TFTPListenError(host: configuration.host, port: configuration.port, cause: error)
        }
        if let address = listener.channel.localAddress { await onListening(address) }
        let admission = TFTPTransferAdmission(limit: configuration.maximumTransfers)
        try await withGracefulShutdownHandler {
            try await listener.executeThenClose { inbound, outbound in
                try await withThrowingDiscardingTaskGroup { group in
                    do {
                        for try await envelope in inbound {
                            await receive(envelope, outbound: outbound, admission: admission, group: &group)
                        }
                    } catch where Task.isCancelled || !listener.channel.isActive {
                        // Closed for shutdown: not an error.
                    } catch {
                        logger.error("tftp listener failed; running transfers are stopped", metadata: ["problem": "\(error)"])
                        group.cancelAll()
                        throw error
                    }
                    group.cancelAll()
                }
            }
        } onGracefulShutdown: {
            listener.channel.close(promise: nil)
        }
    }

    /// One datagram on the listening socket. Never throws: a bad packet is answered or dropped.
    private func receive(
        _ envelope: AddressedEnvelope<ByteBuffer>, outbound: Outbound, admission: TFTPTransferAdmission,
        group: inout ThrowingDiscardingTaskGroup<any Error>
    ) async {
        let client = envelope.remoteAddress
        let packet: TFTPPacket
        do {
            packet = try TFTPPacket(decoding: envelope.data)
        } catch {
            // An ERROR, even a broken one, is never answered.
            guard envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt16.self) != TFTPOpcode.error.rawValue else { return }
            logger.debug("tftp malformed request", metadata: ["client": "\(client)", "problem": "\(error)"])
            await refuse(client, .illegalOperation, "malformed request: \(error)", reason: "malformed", outbound: outbound)
            return
        }
        switch packet {
        case .readRequest(let request):
            await admit(request, from: client, localAddress: envelope.metadata?.packetInfo?.destinationAddress,
                outbound: outbound, admission: admission, group: &group)
        case .writeRequest(let request):
            logger.debug("tftp write refused", metadata: ["client": "\(client)", "file": "\(request.filename)"])
            await refuse(client, .accessViolation, "this server is read-only", reason: "write_request", outbound: outbound)
        case .error:
            break
        case .data, .acknowledgement, .optionAcknowledgement:
            await refuse(client, .unknownTransferID, "no transfer on this port", reason: "unexpected_packet", outbound: outbound)
        }
    }

    private func admit(
        _ request: TFTPRequest, from client: SocketAddress, localAddress: SocketAddress?, outbound: Outbound,
        admission: TFTPTransferAdmission, group: inout ThrowingDiscardingTaskGroup<any Error>
    ) async {
        var metadata: Logger.Metadata = [
            "client": "\(client)", "file": "\(request.filename)", "mode": "\(request.mode.rawValue)",
            "options": "\(request.options.map(\.description).joined(separator: " "))",
        ]
        logger.debug("tftp request", metadata: metadata)
        guard request.mode != .mail else {
            await refuse(client, .illegalOperation, "mail mode is not supported", reason: "unsupported_mode", outbound: outbound)
            return
        }
        let path: BootFilePath
        do {
            path = try BootFilePath(validating: request.filename)
        } catch {
            metadata["problem"] = "\(error)"
            logger.debug("tftp request refused", metadata: metadata)
            await refuse(client, error, outbound: outbound)
            return
        }
        let ticket: TFTPTransferAdmission.Ticket
        switch admission.admit(client) {
        case .admitted(let admitted):
            ticket = admitted
        case .duplicate:
            // A retransmitted RRQ: the running transfer retransmits on its own.
            logger.debug("tftp duplicate request ignored", metadata: metadata)
            return
        case .busy(let running):
            logger.debug("tftp request refused: busy", metadata: metadata)
            await refuse(
                client, .notDefined, "server busy: \(running) transfers running (limit \(configuration.maximumTransfers)); try again later",
                reason: "busy", outbound: outbound)
            return
        }
        group.addTask {
            defer { admission.release(ticket) }
            await serve(
                request, path: path, client: client, localAddress: localAddress, outbound: outbound, metadata: metadata,
                admission: admission, ticket: ticket)
        }
    }

    /// Opens the file, binds the transfer's socket and waits for the transfer to end.
    private func serve(
        _ request: TFTPRequest, path: BootFilePath, client: SocketAddress, localAddress: SocketAddress?, outbound: Outbound,
        metadata: Logger.Metadata, admission: TFTPTransferAdmission, ticket: TFTPTransferAdmission.Ticket
    ) async {
        var metadata = metadata
        let file: BootFile
        do {
            file = try await source.open(BootFileRequest(path: path, clientAddress: client.ipAddress))
        } catch {
            metadata["problem"] = "\(error)"
            if case .unreadable = error { logger.error("tftp file unreadable", metadata: metadata) } else { logger.debug("tftp request refused", metadata: metadata) }
            await refuse(client, error, outbound: outbound)
            return
        }
        let netascii = request.mode == .netascii
        let transferSize: Int
        do {
            transferSize = netascii ? try await TFTPTransferPayload.netasciiLength(of: file) : file.size
        } catch {
            metadata["problem"] = "\(error)"
            logger.error("tftp file unreadable", metadata: metadata)
            if case .reader(let reader) = file.content { await reader.close() }
            await refuse(client, .notDefined, "the file could not be read", reason: "unreadable", outbound: outbound)
            return
        }
        let negotiation = TFTPOptionNegotiation.negotiate(
            request.options, transferSize: netascii ? nil : transferSize, limits: configuration.optionLimits)
        let machine = TFTPReadTransfer(transferSize: transferSize, negotiation: negotiation, configuration: configuration.transfer)
        let readAhead = max(configuration.readAhead, negotiation.parameters.blockSize * negotiation.parameters.windowSize)

        let started = NIODeadline.now()
        let transfer: (channel: any Channel, outcome: EventLoopFuture<TFTPTransferOutcome>)
        do {
            transfer = try await bindTransfer(near: localAddress) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let outcome = channel.eventLoop.makePromise(of: TFTPTransferOutcome.self)
                    let payload = TFTPTransferPayload(file: file, netascii: netascii, transferSize: transferSize, readAhead: readAhead)
                    let handler = TFTPTransferHandler(
                        machine: machine, client: client, payload: payload, outcome: outcome,
                        acknowledged: { admission.acknowledged(ticket) }, finished: { admission.release(ticket) })
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return (channel, outcome.futureResult)
                }
            }
        } catch {
            metadata["problem"] = "\(error)"
            logger.error("tftp cannot open a transfer socket", metadata: metadata)
            if case .reader(let reader) = file.content { await reader.close() }
            await refuse(client, .notDefined, "server cannot open a transfer socket", reason: "socket", outbound: outbound)
            return
        }
        metrics.started.increment()
        let channel = transfer.channel
        let outcome: TFTPTransferOutcome
        do {
            outcome = try await withTaskCancellationHandler {
                try await transfer.outcome.get()
            } onCancel: {
                channel.pipeline.fireUserInboundEventTriggered(TFTPTransferHandler.Shutdown())
            }
        } catch {
            outcome = TFTPTransferOutcome(result: .failed(reason: "socket", detail: "\(error)"), bytesSent: 0, retransmissions: 0, strangerPackets: 0)
        }
        metrics.record(outcome)
        metadata["blksize"] = "\(negotiation.parameters.blockSize)"
        metadata["windowsize"] = "\(negotiation.parameters.windowSize)"
        metadata["bytes"] = "\(transferSize)"
        metadata["retransmissions"] = "\(outcome.retransmissions)"
        metadata["milliseconds"] = "\((NIODeadline.now() - started).nanoseconds / 1_000_000)"
        switch outcome.result {
        case .completed:
            logger.debug("tftp transfer completed", metadata: metadata)
        case .failed(let reason, let detail):
            metadata["reason"] = "\(reason)"
            metadata["problem"] = "\(detail)"
            logger.debug("tftp transfer failed", metadata: metadata)
        }
    }

    /// Binds the transfer socket to the address the request came in on, so the client sees replies
    /// from the address it asked (a wildcard listener would let routing pick another one).
    private func bindTransfer<Output: Sendable>(
        near localAddress: SocketAddress?, initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Output>
    ) async throws -> Output {
        let bootstrap = DatagramBootstrap(group: eventLoopGroup)
        if let host = localAddress?.ipAddress, Self.isWildcard(configuration.host) {
            do {
                return try await bootstrap.bind(host: host, port: 0, channelInitializer: initializer)
            } catch {
                // A broadcast or multicast destination cannot be bound; fall back to the listener's address.
            }
        }
        return try await bootstrap.bind(host: configuration.host, port: 0, channelInitializer: initializer)
    }

    private static func isWildcard(_ host: String) -> Bool { host == "0.0.0.0" || host == "::" }

    private func refuse(_ client: SocketAddress, _ error: BootFileOpenError, outbound: Outbound) async {
        switch error {
        case .notFound:
            await refuse(client, .fileNotFound, "file not found", reason: "not_found", outbound: outbound)
        case .accessViolation(_, let reason):
            await refuse(client, .accessViolation, "access violation: \(reason)", reason: "access_violation", outbound: outbound)
        case .unreadable:
            await refuse(client, .notDefined, "the file could not be read", reason: "unreadable", outbound: outbound)
        }
    }

    /// Answers from the listening port: the client has no transfer TID yet.
    private func refuse(_ client: SocketAddress, _ code: TFTPErrorCode, _ message: String, reason: String, outbound: Outbound) async {
        metrics.refused(reason: reason)
        try? await outbound.write(AddressedEnvelope(remoteAddress: client, data: TFTPPacket.error(code: code, message: message).encoded()))
    }
}

/// The listening socket could not be opened; says what to change.
public struct TFTPListenError: Error, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var cause: any Error

    public var description: String {
        let hint = port < 1024 ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" : ""
        return "TFTP cannot listen on \(host):\(port): \(cause)\(hint); set tftp.listen (or --tftp-listen), or off"
    }
}

extension TFTPService: CustomStringConvertible {
    public var description: String { "TFTPService(\(configuration.host):\(configuration.port))" }
}

/// Counts running transfers against the limit and remembers their clients, so that a retransmitted
/// request does not start a second transfer. Once a client has acknowledged something, a request
/// from the same address is a new one (PXE ROMs ask for `tsize`, abort, and ask again from the same
/// port), and the old transfer's slot goes to it.
final class TFTPTransferAdmission: Sendable {
    enum Decision: Equatable {
        case admitted(Ticket)
        case duplicate
        case busy(running: Int)
    }

    /// One admitted transfer; releasing a ticket that was superseded changes nothing.
    struct Ticket: Sendable, Equatable {
        let client: SocketAddress
        let id: UInt64
    }

    private struct Entry {
        var id: UInt64
        var acknowledged: Bool
    }

    private struct State {
        var entries: [SocketAddress: Entry] = [:]
        var nextID: UInt64 = 0
    }

    private let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = limit }

    func admit(_ client: SocketAddress) -> Decision {
        state.withLock { state in
            if let entry = state.entries[client], !entry.acknowledged { return .duplicate }
            guard state.entries[client] != nil || state.entries.count < limit else { return .busy(running: state.entries.count) }
            state.nextID += 1
            state.entries[client] = Entry(id: state.nextID, acknowledged: false)
            return .admitted(Ticket(client: client, id: state.nextID))
        }
    }

    /// The client answered: a later request from its address is not a retransmission.
    func acknowledged(_ ticket: Ticket) {
        state.withLock { state in
            if state.entries[ticket.client]?.id == ticket.id { state.entries[ticket.client]?.acknowledged = true }
        }
    }

    func release(_ ticket: Ticket) {
        state.withLock { state in
            if state.entries[ticket.client]?.id == ticket.id { state.entries[ticket.client] = nil }
        }
    }
}
