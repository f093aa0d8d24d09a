import Foundation
import NetworkPrimitives
import ProvisioningModel
import Testing

@Suite("Identity matching: system UUID, then serial, then MACs")
struct MachineIdentityTests {
    static let uuidA = "4c4c4544-0042-3510-8052-b4c04f4b4e31"
    static let mac1 = MACAddress("52:54:00:00:00:01")!
    static let mac2 = MACAddress("52:54:00:00:00:02")!
    static let mac3 = MACAddress("52:54:00:00:00:03")!

    static func machine(_ name: String, uuid: String?, serial: String?, macs: [MACAddress]) -> Machine {
        Machine(
            name: name, facts: HardwareFacts(systemSerial: serial, systemUUID: uuid),
            interfaces: macs.map { NetworkInterface(mac: $0) })
    }

    static let a = machine("a", uuid: uuidA, serial: "SERIAL-A", macs: [mac1])
    static let b = machine("b", uuid: nil, serial: "SERIAL-B", macs: [mac2])
    static let handRegistered = machine("racked", uuid: nil, serial: nil, macs: [mac3])

    enum Expected: Equatable {
        case new, known(String, IdentityEvidence), conflict
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        var uuid: String?
        var serial: String?
        var macs: [MACAddress]
        var expected: Expected
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "nothing known", uuid: "22222222-3333-4444-5555-666666666666", serial: "NEW", macs: [MACAddress("52:54:00:00:00:99")!], expected: .new),
        Case(label: "same UUID, new MAC (NIC swapped)", uuid: uuidA, serial: "SERIAL-A", macs: [MACAddress("52:54:00:00:00:98")!], expected: .known("a", .systemUUID)),
        Case(label: "UUID in upper case", uuid: uuidA.uppercased(), serial: nil, macs: [mac1], expected: .known("a", .systemUUID)),
        Case(label: "same MAC, new UUID (board swapped?)", uuid: "33333333-3333-3333-3333-333333333333", serial: nil, macs: [mac1], expected: .conflict),
        Case(label: "missing UUID, serial matches", uuid: nil, serial: "SERIAL-B", macs: [MACAddress("52:54:00:00:00:97")!], expected: .known("b", .serial)),
        Case(label: "placeholder UUID and serial, MAC of a hand-registered machine", uuid: "03000200-0400-0500-0006-000700080009", serial: "To Be Filled By O.E.M.", macs: [mac3], expected: .known("racked", .mac)),
        Case(label: "UUID of one machine, MAC of another", uuid: uuidA, serial: nil, macs: [mac1, mac2], expected: .conflict),
        Case(label: "MACs of two machines", uuid: nil, serial: nil, macs: [mac2, mac3], expected: .conflict),
        Case(label: "MAC known, serial contradicts", uuid: nil, serial: "OTHER", macs: [mac2], expected: .conflict),
    ]

    @Test(arguments: cases)
    func match(_ example: Case) {
        let machines = [Self.a, Self.b, Self.handRegistered]
        let result = MachineIdentity.match(IdentityClaim(systemUUID: example.uuid, serial: example.serial, macs: example.macs), candidates: machines)
        let outcome: Expected = switch result {
        case .new: .new
        case .known(let id, let evidence): .known(machines.first { $0.id == id }!.name, evidence)
        case .conflict: .conflict
        }
        #expect(outcome == example.expected, "\(result)")
    }

    @Test("a disk that disappears is a change; link state and speed are not")
    func factChanges() {
        var before = HardwareFacts(memoryBytes: 2 << 30)
        before.disks = [DiskFacts(name: "vda", sizeBytes: 8 << 30, serial: "D1"), DiskFacts(name: "vdb", sizeBytes: 4 << 30, serial: "D2")]
        before.nics = [NICFacts(name: "eth0", mac: Self.mac1, driver: "virtio_net", link: true, speedMbps: 1000)]
        var after = before
        after.nics[0].link = false
        after.nics[0].speedMbps = nil
        #expect(after.changes(since: before).isEmpty)
        after.disks.removeLast()
        after.memoryBytes = 1 << 30
        let changes = after.changes(since: before)
        #expect(changes.map(\.field) == ["memoryBytes", "disks[serial D2]"])
        #expect(changes.map(\.description) == ["memoryBytes: 2 GiB → 1 GiB", "disks[serial D2] disappeared (was vdb, 4 GiB)"])
    }

    @Test("filter expressions and sizes")
    func filters() {
        #expect(ListFilter(expression: "memory>=64GiB") == ListFilter(field: "memory", .atLeast, value: "64GiB"))
        #expect(ListFilter(expression: "disk.count>2") == ListFilter(field: "disk.count", .greater, value: "2"))
        #expect(ListFilter(expression: "state!=ready") == ListFilter(field: "state", .notEqual, value: "ready"))
        #expect(ListFilter(expression: "bootenv=a=b") == ListFilter(field: "bootenv", .equal, value: "a=b"))
        #expect(ListFilter(expression: "=x") == nil && ListFilter(expression: "plain") == nil)
        #expect(ByteCount.parse("64GiB") == 64 << 30 && ByteCount.parse("512 MiB") == 512 << 20)
        #expect(ByteCount.parse("2TB") == 2_000_000_000_000 && ByteCount.parse("1024") == 1024)
        #expect(ByteCount.parse("lots") == nil && ByteCount.parse("5 parsecs") == nil)
        #expect(ByteCount.format(1536 << 20) == "1.5 GiB")
    }

    @Test("machine tokens: genuine, expired, tampered, signed with another key")
    func tokens() throws {
        let authority = MachineTokenAuthority(key: MachineTokenAuthority.generateKey())
        let machine = ObjectID()
        let now = Date()
        let token = authority.issue(for: machine, validFor: 60, now: now)
        #expect(try authority.verify(token, now: now).get() == machine)
        #expect(authority.verify(token, now: now + 61) == .failure(.expired))
        let otherMachine = token.replacingOccurrences(of: machine.description, with: ObjectID().description)
        #expect(authority.verify(otherMachine, now: now) == .failure(.badSignature))
        #expect(MachineTokenAuthority(key: MachineTokenAuthority.generateKey()).verify(token, now: now) == .failure(.badSignature))
        #expect(authority.verify("m1.garbage", now: now) == .failure(.malformed))
    }
}
