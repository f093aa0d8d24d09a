import ApplianceTesting
import DHCPWire
import NIOCore
import Testing

/// Seeded mutations of the golden packets: the decoder must never trap, and whatever it accepts must
/// re-encode to something that decodes to an equal message. A failure names its iteration; the
/// generator is seeded per iteration, so `mutate(seed:)` reproduces it alone.
@Suite("Mutated DHCP packets")
struct MutatedPacketTests {
    static let iterations = 50_000
    static let baseSeed: UInt64 = 0x0D1C_A7E5_5EED

    enum Mutation: CaseIterable {
        case flipBits, setByte, truncate, corruptOptionLength, appendGarbage, insertOption, overloadWithGarbage,
            deleteRange
    }

    @Test("50,000 seeded mutations never trap and round-trip when they decode")
    func mutationsRoundTrip() throws {
        let goldens = try GoldenCapture.names.map { try Golden.packet($0) }
        var decodedCount = 0
        var errorCounts: [String: Int] = [:]
        var failures = 0
        for iteration in 0..<Self.iterations {
            let seed = Self.baseSeed &+ UInt64(iteration)
            let (mutation, bytes) = Self.mutate(goldens, seed: seed)
            let message: DHCPMessage
            do {
                message = try DHCPMessage(buffer: ByteBuffer(bytes: bytes))
            } catch let error as DHCPDecodeError {
                errorCounts[error.metricReason, default: 0] += 1
                continue
            }
            decodedCount += 1
            guard failures < 10 else { continue }  // enough to debug; don't flood the log
            _ = message.dump()  // must not trap either
            let again: DHCPMessage
            do {
                again = try DHCPMessage(buffer: message.encoded)
            } catch {
                failures += 1
                Issue.record("iteration \(iteration) (seed \(seed), \(mutation)): re-encoded message fails: \(error)")
                continue
            }
            if again != message {
                failures += 1
                Issue.record("iteration \(iteration) (seed \(seed), \(mutation)): round trip differs:\n\(Golden.diff(expected: message.dump(), actual: again.dump()))")
            }
        }
        // The mutations must exercise both paths, or the test proves little.
        #expect(decodedCount > Self.iterations / 4, "only \(decodedCount) mutations decoded")
        #expect(errorCounts.count >= 4, "decode errors seen: \(errorCounts)")
    }

    static func mutate(_ goldens: [[UInt8]], seed: UInt64) -> (Mutation, [UInt8]) {
        var random = SplitMix64(seed: seed)
        var bytes = goldens[Int.random(in: 0..<goldens.count, using: &random)]
        let mutation = Mutation.allCases[Int.random(in: 0..<Mutation.allCases.count, using: &random)]
        switch mutation {
        case .flipBits:
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
            }
        case .setByte:
            // Mostly in the options, where the structure is.
            let start = Bool.random(using: &random) ? 0 : DHCPMessage.headerLength
            bytes[Int.random(in: start..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
        case .truncate:
            bytes.removeLast(Int.random(in: 1...bytes.count, using: &random))
        case .corruptOptionLength:
            let lengthOffsets = optionLengthOffsets(bytes)
            if let offset = lengthOffsets.randomElement(using: &random) {
                bytes[offset] = UInt8.random(in: 0...255, using: &random)
            }
        case .appendGarbage:
            bytes += (0..<Int.random(in: 1...600, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case .insertOption:
            let value = (0..<Int.random(in: 0...255, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let code = UInt8.random(in: 1...254, using: &random)
            bytes.insert(contentsOf: [code, UInt8(value.count)] + value, at: DHCPMessage.headerLength)
        case .overloadWithGarbage:
            // Option 52 plus option-shaped or random bytes in file (108..<236) and/or sname (44..<108).
            let overload = UInt8.random(in: 0...4, using: &random)
            bytes.insert(contentsOf: [52, 1, overload], at: DHCPMessage.headerLength)
            for range in [44..<108, 108..<236] where Bool.random(using: &random) {
                var index = range.lowerBound
                while index < range.upperBound {
                    let code = UInt8.random(in: 0...255, using: &random)
                    let length = Int.random(in: 0...12, using: &random)
                    bytes[index] = code
                    if index + 1 < range.upperBound { bytes[index + 1] = UInt8(length) }
                    index += 2 + length
                }
            }
        case .deleteRange:
            let start = Int.random(in: 0..<bytes.count, using: &random)
            let end = min(bytes.count, start + Int.random(in: 1...32, using: &random))
            bytes.removeSubrange(start..<end)
        }
        return (mutation, bytes)
    }

    /// Offsets of the length bytes of the options in the main area.
    static func optionLengthOffsets(_ bytes: [UInt8]) -> [Int] {
        var offsets: [Int] = []
        var index = DHCPMessage.headerLength
        while index + 1 < bytes.count, bytes[index] != 255 {
            if bytes[index] == 0 {
                index += 1
                continue
            }
            offsets.append(index + 1)
            index += 2 + Int(bytes[index + 1])
        }
        return offsets
    }
}
