import NIOCore
import ProvisioningModel
import TFTPWire

/// How one transfer ended, for metrics and the log.
struct TFTPTransferOutcome: Sendable {
    enum Result: Sendable, Equatable {
        case completed
        case failed(reason: String, detail: String)
    }

    var result: Result
    /// DATA payload bytes put on the wire, retransmissions included.
    var bytesSent: Int
    /// DATA blocks (and OACKs) sent more than once.
    var retransmissions: Int
    /// Packets from other TIDs, answered with ERROR 5.
    var strangerPackets: Int
}

/// Runs one read transfer on its own socket (its TID, RFC 1350 §4), entirely on the channel's
/// event loop: decodes what arrives, feeds the state machine, carries out its actions, and keeps
/// file reads ahead of the window so the loop never waits for the disk.
final class TFTPTransferHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// Ends the transfer early (server shutting down): the client gets an ERROR.
    struct Shutdown: Sendable {}

    private var machine: TFTPReadTransfer
    private let client: SocketAddress
    private let payload: TFTPTransferPayload
    private let outcome: EventLoopPromise<TFTPTransferOutcome>
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    /// Blocks the machine asked for whose bytes are still being read.
    private var waiting: ClosedRange<Int>?
    private var bytesSent = 0
    private var retransmissions = 0
    private var strangerPackets = 0
    private var isFinished = false

    /// Told once, at the client's first ACK, and when the transfer ends (the admission slot frees
    /// right away, before the serving task winds down).
    private let acknowledged: @Sendable () -> Void
    private let finished: @Sendable () -> Void
    private var clientAcknowledged = false

    init(
        machine: TFTPReadTransfer, client: SocketAddress, payload: TFTPTransferPayload, outcome: EventLoopPromise<TFTPTransferOutcome>,
        acknowledged: @escaping @Sendable () -> Void = {}, finished: @escaping @Sendable () -> Void = {}
    ) {
        self.acknowledged = acknowledged
        self.finished = finished
        self.machine = machine
        self.client = client
        self.payload = payload
        self.outcome = outcome
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        perform(machine.start(now: .now()))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == client else {
            answerStranger(envelope, context: context)
            return
        }
        // A malformed datagram from the client is dropped; the timer covers whatever it meant.
        guard let packet = try? TFTPPacket(decoding: envelope.data) else { return }
        switch packet {
        case .acknowledgement(let block):
            if !clientAcknowledged {
                clientAcknowledged = true
                acknowledged()
            }
            perform(machine.acknowledgementReceived(block: block, now: .now()))
        case .error(let code, let message):
            perform(machine.errorReceived(code: code, message: message))
        case .readRequest, .writeRequest, .data, .optionAcknowledgement:
            // Nothing else belongs on a read transfer; ignoring it keeps the transfer going.
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is Shutdown else { return context.fireUserInboundEventTriggered(event) }
        guard !isFinished else { return }
        send(.error(code: .notDefined, message: "server is shutting down"))
        context.flush()
        finish(.failed(reason: "shutdown", detail: "server shutting down"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failed(reason: "socket", detail: "\(error)"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failed(reason: "closed", detail: "transfer socket closed"))
        context.fireChannelInactive()
    }

    // MARK: actions

    private func perform(_ action: TFTPReadTransfer.Action) {
        guard !isFinished else { return }
        switch action {
        case .none:
            break
        case .sendOptionAcknowledgement(let options, let retransmission):
            if retransmission { retransmissions += 1 }
            send(.optionAcknowledgement(options))
            context?.flush()
        case .sendData(let blocks, let retransmitted):
            retransmissions += retransmitted
            sendData(blocks)
        case .complete:
            finish(.completed)
        case .abort(let failure, let notify):
            if let notify {
                send(notify)
                context?.flush()
            }
            switch failure {
            case .timedOut: finish(.failed(reason: "timeout", detail: failure.description))
            case .clientError: finish(.failed(reason: "client_error", detail: failure.description))
            }
        }
        armTimer()
    }

    /// Sends `blocks` in order, as far as their bytes are at hand; the rest waits for the read in flight.
    private func sendData(_ requested: ClosedRange<Int>) {
        guard let context else { return }
        var blocks = requested
        if let pending = waiting {
            blocks = min(pending.lowerBound, blocks.lowerBound)...max(pending.upperBound, blocks.upperBound)
            waiting = nil
        }
        payload.release(before: machine.block(max(machine.acknowledged + 1, 1)).bytes.lowerBound)
        for absolute in blocks {
            let (number, bytes) = machine.block(absolute)
            guard payload.isAvailable(bytes) else {
                waiting = absolute...blocks.upperBound
                break
            }
            var datagram = context.channel.allocator.buffer(capacity: 4 + bytes.count)
            datagram.writeTFTPData(block: number, payload: EmptyCollection())
            payload.copy(bytes, into: &datagram)
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: datagram)), promise: nil)
            bytesSent += bytes.count
        }
        context.flush()
        readAhead(toReach: machine.block(blocks.upperBound).bytes.upperBound)
    }

    private func readAhead(toReach offset: Int) {
        guard let context else { return }
        while let read = payload.readAhead(toReach: offset) {
            switch read {
            case .ready(let bytes):
                payload.append(rawChunk: bytes)
            case .pending(let work):
                let promise = context.eventLoop.makePromise(of: [UInt8].self)
                promise.completeWithTask { try await work() }
                promise.futureResult.assumeIsolated().whenComplete { result in self.chunkArrived(result) }
                return
            }
        }
        resumeWaiting()
    }

    private func chunkArrived(_ result: Result<[UInt8], any Error>) {
        guard !isFinished else { return }
        switch result {
        case .success(let bytes):
            payload.append(rawChunk: bytes)
            if payload.endedEarly {
                send(.error(code: .notDefined, message: "the file changed while being served"))
                context?.flush()
                finish(.failed(reason: "read", detail: "file shorter than when opened"))
                return
            }
            if waiting != nil { resumeWaiting() } else { readAhead(toReach: machine.block(machine.sent).bytes.upperBound) }
        case .failure(let error):
            send(.error(code: .notDefined, message: "the file could not be read"))
            context?.flush()
            finish(.failed(reason: "read", detail: "\(error)"))
        }
    }

    private func resumeWaiting() {
        guard let blocks = waiting, payload.isAvailable(machine.block(blocks.lowerBound).bytes) else { return }
        waiting = nil
        sendData(blocks)
    }

    private func answerStranger(_ envelope: AddressedEnvelope<ByteBuffer>, context: ChannelHandlerContext) {
        strangerPackets += 1
        // An ERROR is never answered with an ERROR.
        guard envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt16.self) != TFTPOpcode.error.rawValue else { return }
        let reply = TFTPPacket.error(code: .unknownTransferID, message: "unknown transfer ID").encoded(allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)), promise: nil)
    }

    private func send(_ packet: TFTPPacket) {
        guard let context else { return }
        let datagram = packet.encoded(allocator: context.channel.allocator)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: datagram)), promise: nil)
    }

    // MARK: timer

    /// One timer at a time: it may fire before the machine's (moving) deadline, and is then re-armed.
    private func armTimer() {
        guard !isFinished, let context, let deadline = machine.retransmissionDeadline else { return }
        if let timerDeadline, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerDeadline = nil
        perform(machine.timerFired(now: .now()))
    }

    private func finish(_ result: TFTPTransferOutcome.Result) {
        guard !isFinished else { return }
        isFinished = true
        finished()
        timer?.cancel()
        timer = nil
        let closing = payload.closingReader()
        if let closing { Task { await closing.close() } }
        outcome.succeed(
            TFTPTransferOutcome(result: result, bytesSent: bytesSent, retransmissions: retransmissions, strangerPackets: strangerPackets))
        context?.close(promise: nil)
    }
}
