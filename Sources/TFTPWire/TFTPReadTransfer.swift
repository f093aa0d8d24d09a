import NIOCore

/// The server side of one read transfer (RFC 1350 lock-step, RFC 7440 windows), with no I/O:
/// events in (ACKs, client errors, timer ticks, each with the current time), actions out.
///
/// Blocks are numbered absolutely from 1 (block 0 stands for the OACK, which the client
/// acknowledges with ACK 0); on the wire a block number is the absolute one modulo 65536, so
/// transfers of more than 65535 blocks roll over to 0. The adapter keeps one timer that fires at or
/// after ``retransmissionDeadline`` and reports it with ``timerFired(now:)``.
public struct TFTPReadTransfer: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The first retransmission timeout when the client did not negotiate one.
        public var retransmissionTimeout: TimeAmount
        /// Back-off doubles the timeout after each unanswered retransmission, up to this.
        public var maximumRetransmissionTimeout: TimeAmount
        /// Consecutive timeouts tolerated; one more ends the transfer.
        public var retransmissionLimit: Int

        public init(
            retransmissionTimeout: TimeAmount = .seconds(1), maximumRetransmissionTimeout: TimeAmount = .seconds(8),
            retransmissionLimit: Int = 6
        ) {
            self.retransmissionTimeout = retransmissionTimeout
            self.maximumRetransmissionTimeout = maximumRetransmissionTimeout
            self.retransmissionLimit = retransmissionLimit
        }
    }

    /// What the adapter does next.
    public enum Action: Sendable, Hashable {
        /// Send an OACK with these options.
        case sendOptionAcknowledgement([TFTPOption], retransmission: Bool)
        /// Send these DATA blocks, in order; `retransmitted` of them (from the front) were sent before.
        case sendData(blocks: ClosedRange<Int>, retransmitted: Int)
        /// Nothing to send: a duplicate or stale ACK, or a timer that fired early.
        case none
        /// The client acknowledged the last block.
        case complete
        /// The transfer is over without success; send `notify` to the client if present.
        case abort(TFTPReadTransferFailure, notify: TFTPPacket?)
    }

    public let transferSize: Int
    public let parameters: TFTPTransferParameters
    public let configuration: Configuration
    private let optionAcknowledgement: [TFTPOption]

    /// The absolute number of the block that ends the transfer (shorter than a full block, maybe empty).
    public var lastBlock: Int { transferSize / parameters.blockSize + 1 }
    /// Highest block the client has acknowledged (-1: not even the OACK).
    public private(set) var acknowledged: Int
    /// Highest block sent so far.
    public private(set) var sent: Int
    public private(set) var retransmissionDeadline: NIODeadline?
    private var currentTimeout: TimeAmount
    private var consecutiveTimeouts = 0
    private var phase = Phase.idle

    private enum Phase: Sendable, Hashable { case idle, transferring, finished }

    public init(transferSize: Int, negotiation: TFTPOptionNegotiation, configuration: Configuration = Configuration()) {
        precondition(transferSize >= 0)
        self.transferSize = transferSize
        self.parameters = negotiation.parameters
        self.configuration = configuration
        self.optionAcknowledgement = negotiation.acknowledged
        self.currentTimeout = negotiation.parameters.timeout ?? configuration.retransmissionTimeout
        // Without options the exchange starts at DATA 1, as if an OACK had been acknowledged.
        self.acknowledged = negotiation.acknowledged.isEmpty ? 0 : -1
        self.sent = self.acknowledged
    }

    /// The wire block number and the byte range of the transfer an absolute block carries.
    public func block(_ absolute: Int) -> (number: UInt16, bytes: Range<Int>) {
        let start = min((absolute - 1) * parameters.blockSize, transferSize)
        return (UInt16(truncatingIfNeeded: absolute), start..<min(start + parameters.blockSize, transferSize))
    }

    public var isFinished: Bool { phase == .finished }

    /// Sends the OACK, or the first window when no option was accepted.
    public mutating func start(now: NIODeadline) -> Action {
        guard phase == .idle else { return .none }
        phase = .transferring
        if acknowledged < 0 {
            sent = 0
            armTimer(now: now)
            return .sendOptionAcknowledgement(optionAcknowledgement, retransmission: false)
        }
        return sendWindow(now: now)
    }

    /// An ACK from the client's TID. Only an ACK that acknowledges something new moves the
    /// transfer on; a repeated or stale one is ignored (no Sorcerer's Apprentice), and
    /// retransmission is left to the timer.
    public mutating func acknowledgementReceived(block number: UInt16, now: NIODeadline) -> Action {
        guard phase == .transferring, let block = outstandingBlock(numbered: number) else { return .none }
        acknowledged = block
        consecutiveTimeouts = 0
        currentTimeout = parameters.timeout ?? configuration.retransmissionTimeout
        if block == lastBlock {
            phase = .finished
            retransmissionDeadline = nil
            return .complete
        }
        // An ACK inside the window means the client saw a gap after `block` (RFC 7440 §4):
        // the next window starts right after it, resending what followed.
        return sendWindow(now: now)
    }

    /// An ERROR from the client's TID ends the transfer; nothing is sent back.
    public mutating func errorReceived(code: TFTPErrorCode, message: String) -> Action {
        guard phase != .finished else { return .none }
        phase = .finished
        retransmissionDeadline = nil
        return .abort(.clientError(code: code, message: message), notify: nil)
    }

    /// The timer fired. Before the deadline this does nothing (the adapter re-arms for the new
    /// deadline); after it, the unacknowledged window is sent again with a doubled timeout, until
    /// the retransmission limit is spent.
    public mutating func timerFired(now: NIODeadline) -> Action {
        guard phase == .transferring, let deadline = retransmissionDeadline, now >= deadline else { return .none }
        consecutiveTimeouts += 1
        guard consecutiveTimeouts <= configuration.retransmissionLimit else {
            phase = .finished
            retransmissionDeadline = nil
            let failure = TFTPReadTransferFailure.timedOut(retransmissions: configuration.retransmissionLimit)
            return .abort(failure, notify: .error(code: .notDefined, message: "transfer timed out"))
        }
        currentTimeout = min(currentTimeout * 2, max(configuration.maximumRetransmissionTimeout, parameters.timeout ?? .zero))
        armTimer(now: now)
        if sent == 0 {
            return .sendOptionAcknowledgement(optionAcknowledgement, retransmission: true)
        }
        let blocks = (acknowledged + 1)...sent
        return .sendData(blocks: blocks, retransmitted: blocks.count)
    }

    /// Sends the window after `acknowledged`; blocks up to `sent` go out again.
    private mutating func sendWindow(now: NIODeadline) -> Action {
        let first = acknowledged + 1
        let last = min(acknowledged + parameters.windowSize, lastBlock)
        let retransmitted = max(0, min(sent, last) - first + 1)
        sent = max(sent, last)
        armTimer(now: now)
        return .sendData(blocks: first...last, retransmitted: retransmitted)
    }

    private mutating func armTimer(now: NIODeadline) {
        retransmissionDeadline = now + currentTimeout
    }

    /// The absolute block an ACK number stands for, if it acknowledges something sent and not yet
    /// acknowledged. The outstanding range is never wider than 65535 blocks, so at most one matches.
    private func outstandingBlock(numbered number: UInt16) -> Int? {
        guard sent > acknowledged else { return nil }
        let distance = Int(number &- UInt16(truncatingIfNeeded: acknowledged))
        guard distance >= 1, distance <= sent - acknowledged else { return nil }
        return acknowledged + distance
    }
}

/// Why a read transfer ended without success.
public enum TFTPReadTransferFailure: Error, Sendable, Hashable, CustomStringConvertible {
    case timedOut(retransmissions: Int)
    case clientError(code: TFTPErrorCode, message: String)

    public var description: String {
        switch self {
        case .timedOut(let retransmissions): "no answer after \(retransmissions) retransmissions"
        case .clientError(let code, let message): "client sent error \(code.rawValue) (\(code)): \(message)"
        }
    }
}
