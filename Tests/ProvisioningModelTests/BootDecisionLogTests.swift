import Foundation
import NetworkPrimitives
import ProvisioningModel
import Testing

@Suite("Boot decision log")
struct BootDecisionLogTests {
    static func record(_ mac: MACAddress, at second: Int, answer: String = "none") -> BootDecisionRecord {
        BootDecisionRecord(
            time: Date(timeIntervalSince1970: TimeInterval(second)), mac: mac, message: "discover", via: "eth1", architecture: nil,
            vendorClass: nil, userClasses: [], answer: answer, reason: "test", address: nil)
    }

    let first = MACAddress(2, 0, 0, 0, 0, 1)
    let second = MACAddress(2, 0, 0, 0, 0, 2)

    @Test("records come back newest first, across the MACs asked for, and only theirs")
    func newestFirst() {
        let log = BootDecisionLog()
        log.record(Self.record(first, at: 1))
        log.record(Self.record(second, at: 2))
        log.record(Self.record(first, at: 3))
        log.record(Self.record(MACAddress(2, 0, 0, 0, 0, 9), at: 4))
        #expect(log.records(for: [first, second]).map(\.time.timeIntervalSince1970) == [3, 2, 1])
    }

    @Test("each MAC keeps only its latest records")
    func boundedPerMAC() {
        let log = BootDecisionLog(perMAC: 3)
        for second in 0..<10 { log.record(Self.record(first, at: second)) }
        #expect(log.records(for: [first]).map(\.time.timeIntervalSince1970) == [9, 8, 7])
    }

    @Test("beyond the MAC bound the longest-unseen MACs are forgotten, recent ones kept")
    func boundedMACs() {
        let log = BootDecisionLog(perMAC: 2, maximumMACs: 100)
        let macs = (0..<250).map { MACAddress(2, 0, 0, 0, UInt8($0 >> 8), UInt8($0 & 0xff)) }
        for (index, mac) in macs.enumerated() { log.record(Self.record(mac, at: index)) }
        #expect(log.records(for: [macs[0]]).isEmpty)
        #expect(log.records(for: [macs[249]]).count == 1)
        #expect(macs.filter { !log.records(for: [$0]).isEmpty }.count <= 100)
    }
}
