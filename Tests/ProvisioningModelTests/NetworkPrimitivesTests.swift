import Foundation
import NetworkPrimitives
import Testing

@Suite("MACAddress")
struct MACAddressTests {
    @Test("accepts the spellings operators and firmware use", arguments: [
        "52:54:00:ab:cd:ef",
        "52-54-00-ab-cd-ef",
        "5254.00ab.cdef",
        "525400abcdef",
        "52:54:00:AB:CD:EF",
        "52-54-00-AB-CD-EF",
        "5254.00AB.CDEF",
        "525400ABCDEF",
        "52:54:00:Ab:cD:eF",
    ])
    func acceptedSpelling(_ text: String) throws {
        let mac = try #require(MACAddress(text))
        #expect(mac == MACAddress(0x52, 0x54, 0x00, 0xab, 0xcd, 0xef))
    }

    @Test("rejects text that is not a MAC", arguments: [
        ("five groups", "52:54:00:12:34"),
        ("bad hex digit", "52:54:00:12:34:5g"),
        ("bad hex in bare form", "52540012345z"),
        ("sign inside a group", "52:54:00:12:34:+6"),
        ("sign in bare form", "+25400123456"),
        ("mixed ':' and '-'", "52:54-00:12:34:56"),
        ("mixed '.' and ':'", "5254.0012:3456"),
        ("uneven groups", "525:4:00:12:34:56"),
        ("Cisco form with uneven groups", "52540.012.3456"),
        ("one separator", "525400:123456"),
        ("empty", ""),
        ("seven bytes", "52:54:00:12:34:56:78"),
        ("seven bytes bare", "52540012345678"),
        ("trailing separator", "52:54:00:12:34:56:"),
        ("whitespace", " 52:54:00:12:34:56"),
    ])
    func rejectedSpelling(_ reason: String, _ text: String) {
        #expect(MACAddress(text) == nil, "\(reason): '\(text)'")
    }

    @Test("prints the canonical lowercase, colon-separated form")
    func canonicalDescription() throws {
        let mac = try #require(MACAddress("5254.00AB.CDEF"))
        #expect(mac.description == "52:54:00:ab:cd:ef")
        #expect(MACAddress(mac.description) == mac)
    }

    @Test("prints the hyphenated form iPXE uses in file names")
    func hyphenatedForm() throws {
        let mac = try #require(MACAddress("52:54:00:AB:CD:EF"))
        #expect(mac.hyphenated == "52-54-00-ab-cd-ef")
    }

    @Test("creates from exactly six bytes only", arguments: [0, 5, 7])
    func byteCount(_ count: Int) {
        #expect(MACAddress(bytes: [UInt8](repeating: 1, count: count)) == nil)
        #expect(MACAddress(bytes: [UInt8](repeating: 1, count: 6)) != nil)
    }

    @Test("orders by bytes")
    func ordering() {
        #expect(MACAddress(0, 0, 0, 0, 0, 0xff) < MACAddress(0, 0, 0, 0, 1, 0))
    }

    @Test("encodes as the canonical string and decodes any accepted spelling")
    func codableRoundTrip() throws {
        let decoded = try JSONDecoder().decode([MACAddress].self, from: Data(#"["52-54-00-AB-CD-EF"]"#.utf8))
        #expect(decoded == [MACAddress(0x52, 0x54, 0x00, 0xab, 0xcd, 0xef)])
        let encoded = String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self)
        #expect(encoded == #"["52:54:00:ab:cd:ef"]"#)
    }

    @Test("decoding a non-MAC string is a data-corrupted error")
    func codableError() {
        let error = #expect(throws: DecodingError.self) {
            _ = try JSONDecoder().decode([MACAddress].self, from: Data(#"["52:54:00:12:34"]"#.utf8))
        }
        guard case .dataCorrupted(let context)? = error else {
            Issue.record("expected dataCorrupted, got \(String(describing: error))")
            return
        }
        #expect(context.debugDescription.contains("52:54:00:12:34"))
    }
}

@Suite("IPv4Address")
struct IPv4AddressTests {
    @Test("parses dotted quads", arguments: [
        ("10.0.0.1", [10, 0, 0, 1] as [UInt8]),
        ("0.0.0.0", [0, 0, 0, 0]),
        ("255.255.255.255", [255, 255, 255, 255]),
        ("192.168.100.10", [192, 168, 100, 10]),
    ])
    func parses(_ text: String, _ octets: [UInt8]) throws {
        let address = try #require(IPv4Address(text))
        #expect(address.octets == octets)
        #expect(address.description == text)
    }

    @Test("rejects anything but four plain decimal octets", arguments: [
        ("leading zero", "010.0.0.1"),
        ("leading zero in last octet", "10.0.0.01"),
        ("octet 256", "256.0.0.1"),
        ("three parts", "10.0.1"),
        ("five parts", "10.0.0.1.2"),
        ("empty part", "10..0.1"),
        ("empty", ""),
        ("sign", "+1.0.0.1"),
        ("hex", "0x1.0.0.1"),
        ("whitespace", " 10.0.0.1"),
        ("non-ASCII digits", "١٠.0.0.1"),
    ])
    func rejects(_ reason: String, _ text: String) {
        #expect(IPv4Address(text) == nil, "\(reason): '\(text)'")
    }

    @Test("orders numerically, not textually")
    func ordering() throws {
        #expect(try #require(IPv4Address("10.0.0.9")) < #require(IPv4Address("10.0.0.10")))
    }

    @Test("decoding a non-address string is a data-corrupted error")
    func codableError() {
        #expect(throws: DecodingError.self) {
            _ = try JSONDecoder().decode([IPv4Address].self, from: Data(#"["10.0.0.256"]"#.utf8))
        }
    }
}

@Suite("IPv4Network")
struct IPv4NetworkTests {
    @Test("normalises the address to the network address", arguments: [
        ("10.99.0.77/24", "10.99.0.0/24"),
        ("10.99.0.0/24", "10.99.0.0/24"),
        ("192.168.1.130/25", "192.168.1.128/25"),
        ("10.1.2.3/32", "10.1.2.3/32"),
        ("10.1.2.3/0", "0.0.0.0/0"),
    ])
    func normalises(_ text: String, _ expected: String) throws {
        #expect(try #require(IPv4Network(text)).description == expected)
    }

    @Test("rejects malformed CIDR text", arguments: [
        "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0/24", "10.0.0.0/24/1", "/24",
    ])
    func rejects(_ text: String) {
        #expect(IPv4Network(text) == nil)
    }

    @Test("contains exactly the addresses under its prefix", arguments: [
        ("10.99.0.0/24", "10.99.0.0", true),
        ("10.99.0.0/24", "10.99.0.255", true),
        ("10.99.0.0/24", "10.99.1.0", false),
        ("10.99.0.0/24", "10.98.255.255", false),
        ("0.0.0.0/0", "203.0.113.7", true),
        ("10.1.2.3/32", "10.1.2.3", true),
        ("10.1.2.3/32", "10.1.2.4", false),
    ])
    func contains(_ network: String, _ address: String, _ expected: Bool) throws {
        let network = try #require(IPv4Network(network))
        #expect(network.contains(try #require(IPv4Address(address))) == expected)
    }

    @Test("computes netmask and broadcast", arguments: [
        ("10.99.0.0/24", "255.255.255.0", "10.99.0.255"),
        ("172.16.0.0/12", "255.240.0.0", "172.31.255.255"),
        ("0.0.0.0/0", "0.0.0.0", "255.255.255.255"),
        ("10.1.2.3/32", "255.255.255.255", "10.1.2.3"),
    ])
    func netmaskAndBroadcast(_ text: String, _ netmask: String, _ broadcast: String) throws {
        let network = try #require(IPv4Network(text))
        #expect(network.netmask.description == netmask)
        #expect(network.broadcast.description == broadcast)
    }

    @Test("round-trips through JSON as CIDR text")
    func codableRoundTrip() throws {
        let network = try #require(IPv4Network("10.99.0.0/24"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = try encoder.encode([network])
        #expect(String(decoding: data, as: UTF8.self) == #"["10.99.0.0/24"]"#)
        #expect(try JSONDecoder().decode([IPv4Network].self, from: data) == [network])
    }
}
