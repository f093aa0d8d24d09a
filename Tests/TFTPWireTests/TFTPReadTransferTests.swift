import NIOCore
import TFTPWire
import Testing

@Suite("TFTP option negotiation")
struct TFTPOptionNegotiationTests {
    let limits = TFTPOptionLimits(maximumBlockSize: 65464, maximumWindowSize: 64)

    func negotiate(_ options: [(String, String)], transferSize: Int? = 1000) -> TFTPOptionNegotiation {
        TFTPOptionNegotiation.negotiate(options.map { TFTPOption($0.0, $0.1) }, transferSize: transferSize, limits: limits)
    }

    @Test("no options: RFC 1350 defaults and no OACK")
    func noOptions() {
        let result = negotiate([])
        #expect(result.acknowledged.isEmpty)
        #expect(result.parameters == TFTPTransferParameters(blockSize: 512, windowSize: 1, timeout: nil))
    }

    @Test("accepted options are acknowledged in the client's order with the values used")
    func accepted() {
        let result = negotiate([("windowsize", "16"), ("TSIZE", "0"), ("blksize", "1468"), ("timeout", "3")])
        #expect(result.acknowledged == [
            TFTPOption("windowsize", "16"), TFTPOption("tsize", "1000"), TFTPOption("blksize", "1468"), TFTPOption("timeout", "3"),
        ])
        #expect(result.parameters == TFTPTransferParameters(blockSize: 1468, windowSize: 16, timeout: .seconds(3)))
    }

    @Test("values outside the RFC ranges, non-numbers and unknown options are left out", arguments: [
        ("blksize", "7"), ("blksize", "-512"), ("blksize", "+512"), ("blksize", " 512"), ("blksize", "99999999999"),
        ("blksize", ""), ("timeout", "0"), ("timeout", "256"), ("windowsize", "0"), ("windowsize", "65536"),
        ("multicast", "1"), ("rollover", "0"), ("utimeout", "1000"),
    ])
    func refused(_ name: String, _ value: String) {
        let result = negotiate([(name, value)])
        #expect(result.acknowledged.isEmpty)
        #expect(result.parameters == TFTPTransferParameters())
    }

    @Test("a block size above the server's limit is answered with the limit")
    func clampedBlockSize() {
        let result = TFTPOptionNegotiation.negotiate(
            [TFTPOption("blksize", "65464"), TFTPOption("windowsize", "1000")], transferSize: 1,
            limits: TFTPOptionLimits(maximumBlockSize: 1468, maximumWindowSize: 32))
        #expect(result.acknowledged == [TFTPOption("blksize", "1468"), TFTPOption("windowsize", "32")])
    }

    @Test("tsize is not acknowledged when the size is not known up front (netascii)")
    func unknownSize() {
        #expect(negotiate([("tsize", "0")], transferSize: nil).acknowledged.isEmpty)
    }

    @Test("tsize is left out for an empty file, which curl cannot take in an OACK")
    func emptyFileSize() {
        #expect(negotiate([("tsize", "0"), ("blksize", "1468")], transferSize: 0).acknowledged == [TFTPOption("blksize", "1468")])
    }

    @Test("a repeated option keeps its first value")
    func repeated() {
        let result = negotiate([("blksize", "1024"), ("blksize", "8192")])
        #expect(result.acknowledged == [TFTPOption("blksize", "1024")])
        #expect(result.parameters.blockSize == 1024)
    }
}

@Suite("TFTP read transfer state machine")
struct TFTPReadTransferTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let configuration = TFTPReadTransfer.Configuration(
        retransmissionTimeout: .seconds(1), maximumRetransmissionTimeout: .seconds(4), retransmissionLimit: 3)

    func transfer(size: Int, options: [(String, String)] = []) -> TFTPReadTransfer {
        let negotiation = TFTPOptionNegotiation.negotiate(
            options.map { TFTPOption($0.0, $0.1) }, transferSize: size, limits: TFTPOptionLimits())
        return TFTPReadTransfer(transferSize: size, negotiation: negotiation, configuration: configuration)
    }

    @Test("without options: DATA 1 first, lock-step to a short last block")
    func lockStep() {
        var machine = transfer(size: 1200)
        #expect(machine.lastBlock == 3)
        #expect(machine.start(now: t0) == .sendData(blocks: 1...1, retransmitted: 0))
        #expect(machine.acknowledgementReceived(block: 1, now: t0) == .sendData(blocks: 2...2, retransmitted: 0))
        #expect(machine.acknowledgementReceived(block: 2, now: t0) == .sendData(blocks: 3...3, retransmitted: 0))
        #expect(machine.block(3).bytes == 1024..<1200)
        #expect(machine.acknowledgementReceived(block: 3, now: t0) == .complete)
        #expect(machine.isFinished)
        #expect(machine.retransmissionDeadline == nil)
    }

    @Test("file sizes at block boundaries end with an empty block", arguments: [(0, 1), (511, 1), (512, 2), (1024, 3)])
    func boundaries(size: Int, lastBlock: Int) {
        let machine = transfer(size: size)
        #expect(machine.lastBlock == lastBlock)
        #expect(machine.block(lastBlock).bytes.count == size % 512)
    }

    @Test("with options: OACK, then ACK 0 starts the data")
    func optionAcknowledgement() {
        var machine = transfer(size: 3000, options: [("blksize", "1468"), ("tsize", "0")])
        #expect(machine.start(now: t0) == .sendOptionAcknowledgement([TFTPOption("blksize", "1468"), TFTPOption("tsize", "3000")], retransmission: false))
        #expect(machine.acknowledgementReceived(block: 0, now: t0) == .sendData(blocks: 1...1, retransmitted: 0))
        #expect(machine.block(1).bytes == 0..<1468)
        #expect(machine.lastBlock == 3)
    }

    @Test("a lost OACK is sent again when the timer fires")
    func lostOptionAcknowledgement() {
        var machine = transfer(size: 10, options: [("tsize", "0")])
        _ = machine.start(now: t0)
        #expect(machine.timerFired(now: t0 + .seconds(1)) == .sendOptionAcknowledgement([TFTPOption("tsize", "10")], retransmission: true))
    }

    @Test("lost DATA: nothing happens before the deadline, the block is resent after it")
    func lostData() {
        var machine = transfer(size: 2000)
        _ = machine.start(now: t0)
        #expect(machine.retransmissionDeadline == t0 + .seconds(1))
        #expect(machine.timerFired(now: t0 + .milliseconds(500)) == .none)
        #expect(machine.timerFired(now: t0 + .seconds(1)) == .sendData(blocks: 1...1, retransmitted: 1))
        // Back-off: the next timeout is twice as long.
        #expect(machine.retransmissionDeadline == t0 + .seconds(3))
        #expect(machine.acknowledgementReceived(block: 1, now: t0 + .seconds(2)) == .sendData(blocks: 2...2, retransmitted: 0))
        // A fresh ACK resets the timeout.
        #expect(machine.retransmissionDeadline == t0 + .seconds(3))
    }

    @Test("lost ACK: the timer resends the same block, and the late ACK moves on once")
    func lostAcknowledgement() {
        var machine = transfer(size: 2000)
        _ = machine.start(now: t0)
        _ = machine.acknowledgementReceived(block: 1, now: t0)  // DATA 2 sent; its ACK is lost
        #expect(machine.timerFired(now: t0 + .seconds(1)) == .sendData(blocks: 2...2, retransmitted: 1))
        #expect(machine.acknowledgementReceived(block: 2, now: t0 + .seconds(1)) == .sendData(blocks: 3...3, retransmitted: 0))
        // The client answers the duplicate DATA 2 with a second ACK 2: ignored.
        #expect(machine.acknowledgementReceived(block: 2, now: t0 + .seconds(1)) == .none)
    }

    @Test("duplicate and stale ACKs never cause a retransmission (no Sorcerer's Apprentice)")
    func duplicateAcknowledgement() {
        var machine = transfer(size: 5000)
        _ = machine.start(now: t0)
        _ = machine.acknowledgementReceived(block: 1, now: t0)
        _ = machine.acknowledgementReceived(block: 2, now: t0)
        for block: UInt16 in [2, 2, 1, 0, 9, 500] {
            #expect(machine.acknowledgementReceived(block: block, now: t0) == .none, "ACK \(block)")
        }
        #expect(machine.sent == 3)
        #expect(machine.acknowledged == 2)
    }

    @Test("a window of 16: whole windows, and an ACK inside the window resends from the gap")
    func window() {
        var machine = transfer(size: 40 * 512 + 100, options: [("windowsize", "16")])
        #expect(machine.start(now: t0) == .sendOptionAcknowledgement([TFTPOption("windowsize", "16")], retransmission: false))
        #expect(machine.acknowledgementReceived(block: 0, now: t0) == .sendData(blocks: 1...16, retransmitted: 0))
        #expect(machine.acknowledgementReceived(block: 16, now: t0) == .sendData(blocks: 17...32, retransmitted: 0))
        // Block 21 was lost: the client acknowledges 20; 21...32 go again with 33...36 new.
        #expect(machine.acknowledgementReceived(block: 20, now: t0) == .sendData(blocks: 21...36, retransmitted: 12))
        #expect(machine.acknowledgementReceived(block: 36, now: t0) == .sendData(blocks: 37...41, retransmitted: 0))
        #expect(machine.timerFired(now: t0 + .seconds(1)) == .sendData(blocks: 37...41, retransmitted: 5))
        #expect(machine.acknowledgementReceived(block: 41, now: t0) == .complete)
    }

    @Test("block numbers roll over to 0 after 65535 (files over 32 MiB at 512 bytes)")
    func rollover() {
        let size = 70_000 * 512 + 7
        var machine = transfer(size: size)
        #expect(machine.lastBlock == 70_001)
        var action = machine.start(now: t0)
        var wireNumbers: [UInt16] = []
        while case .sendData(let blocks, _) = action {
            let number = machine.block(blocks.lowerBound).number
            if blocks.lowerBound >= 65_534 && blocks.lowerBound <= 65_538 { wireNumbers.append(number) }
            action = machine.acknowledgementReceived(block: number, now: t0)
        }
        #expect(action == .complete)
        #expect(wireNumbers == [65_534, 65_535, 0, 1, 2])
        #expect(machine.block(70_001).bytes == (70_000 * 512)..<size)
    }

    @Test("an ACK for a block from the previous 65536 cycle is not taken for a new one")
    func rolloverStaleAcknowledgement() {
        var machine = transfer(size: 70_000 * 512)
        var action = machine.start(now: t0)
        while case .sendData(let blocks, _) = action, blocks.lowerBound < 65_540 {
            action = machine.acknowledgementReceived(block: machine.block(blocks.lowerBound).number, now: t0)
        }
        // Block 65540 (wire 4) is outstanding; a stale ACK 3 is block 65539, already acknowledged.
        #expect(machine.acknowledgementReceived(block: 3, now: t0) == .none)
        #expect(machine.acknowledgementReceived(block: 4, now: t0) == .sendData(blocks: 65_541...65_541, retransmitted: 0))
    }

    @Test("timeouts exhaust the retry limit with doubling intervals, then abort with an ERROR")
    func timeoutExhaustion() {
        var machine = transfer(size: 100)
        _ = machine.start(now: t0)
        var now = t0
        var intervals: [Int64] = []
        for _ in 0..<3 {
            let deadline = machine.retransmissionDeadline!
            intervals.append((deadline - now).nanoseconds / 1_000_000_000)
            now = deadline
            #expect(machine.timerFired(now: now) == .sendData(blocks: 1...1, retransmitted: 1))
        }
        #expect(intervals == [1, 2, 4])
        // Capped at the maximum: the fourth interval is 4 s, not 8 s.
        #expect(machine.retransmissionDeadline == now + .seconds(4))
        let final = machine.timerFired(now: machine.retransmissionDeadline!)
        #expect(final == .abort(.timedOut(retransmissions: 3), notify: .error(code: .notDefined, message: "transfer timed out")))
        #expect(machine.isFinished)
        #expect(machine.acknowledgementReceived(block: 1, now: now) == .none)
    }

    @Test("the client's negotiated timeout is the first interval")
    func negotiatedTimeout() {
        var machine = transfer(size: 100, options: [("timeout", "3")])
        _ = machine.start(now: t0)
        #expect(machine.retransmissionDeadline == t0 + .seconds(3))
    }

    @Test("an ERROR from the client ends the transfer without a reply")
    func clientError() {
        var machine = transfer(size: 100)
        _ = machine.start(now: t0)
        #expect(machine.errorReceived(code: .diskFull, message: "full") == .abort(.clientError(code: .diskFull, message: "full"), notify: nil))
        #expect(machine.timerFired(now: t0 + .seconds(10)) == .none)
    }
}
