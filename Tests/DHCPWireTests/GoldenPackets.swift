import DHCPWire
import Foundation
import NIOCore
import NetworkPrimitives

/// What each golden capture is and what can be seen in it. The packets themselves are
/// `Golden/<name>.hex`, written by `Golden/capture.sh` (see there for the client versions and the lab set-up).
struct GoldenCapture: Sendable, CustomStringConvertible {
    let name: String
    let client: String
    let messageType: DHCPMessageType
    let mac: String
    let architectures: [ClientArchitecture]?
    let vendorClassPrefix: String?
    let userClasses: [String]
    /// The SMBIOS UUID QEMU was given (`-smbios type=1,uuid=…`), for the firmware captures.
    let uuid: String?

    var description: String { name }

    /// The addresses capture.sh's fake OFFER handed out; a REQUEST echoes them in options 50 and 54.
    static let offeredAddress = IPv4Address(10, 98, 7, 100)
    static let serverIdentifier = IPv4Address(10, 98, 7, 1)

    static let all: [GoldenCapture] = [
        linux("dhclient", "isc-dhcp-client 4.4.3-P1", mac: "02:a7:00:00:00:01", vendorClassPrefix: nil),
        linux("udhcpc", "busybox udhcpc 1.35.0", mac: "02:a7:00:00:00:02", vendorClassPrefix: "udhcp 1.35.0"),
        linux("dhcpcd", "dhcpcd 9.4.1", mac: "02:a7:00:00:00:03", vendorClassPrefix: nil),
        firmware(
            "ipxe-bios", "SeaBIOS + iPXE virtio ROM (ipxe-qemu)", mac: "52:54:00:a7:00:04", architecture: .x86BIOS,
            vendorClassPrefix: "PXEClient:Arch:00000", userClasses: ["iPXE"]),
        firmware(
            "ovmf-pxe", "OVMF native UEFI PXE", mac: "52:54:00:a7:00:05", architecture: .efiX64,
            vendorClassPrefix: "PXEClient:Arch:00007", userClasses: []),
        firmware(
            "ovmf-http", "OVMF UEFI HTTP Boot", mac: "52:54:00:a7:00:06", architecture: .efiX64HTTP,
            vendorClassPrefix: "HTTPClient:Arch:00016", userClasses: []),
    ].flatMap { $0 }

    static var names: [String] { all.map(\.name) }

    private static func linux(_ client: String, _ version: String, mac: String, vendorClassPrefix: String?) -> [Self] {
        [DHCPMessageType.discover, .request].map { type in
            GoldenCapture(
                name: "\(client)-\(type)", client: version, messageType: type, mac: mac, architectures: nil,
                vendorClassPrefix: vendorClassPrefix, userClasses: [], uuid: nil)
        }
    }

    private static func firmware(
        _ name: String, _ client: String, mac: String, architecture: ClientArchitecture, vendorClassPrefix: String,
        userClasses: [String]
    ) -> [Self] {
        [DHCPMessageType.discover, .request].map { type in
            GoldenCapture(
                name: "\(name)-\(type)", client: client, messageType: type, mac: mac, architectures: [architecture],
                vendorClassPrefix: vendorClassPrefix, userClasses: userClasses,
                uuid: "4e1f0c2a-6b3d-4c5e-8f70-a700000000" + mac.suffix(2))
        }
    }
}

/// Access to the golden files: read from the test bundle, rewritten in the source tree when asked.
enum Golden {
    struct MissingFile: Error, CustomStringConvertible {
        let name: String
        var description: String { "golden file \(name) is not in the test bundle (run Golden/capture.sh?)" }
    }

    static var updating: Bool { ProcessInfo.processInfo.environment["ANVIL_UPDATE_GOLDEN"] == "1" }

    static var bundleDirectory: URL? { Bundle.module.url(forResource: "Golden", withExtension: nil) }

    /// `Tests/DHCPWireTests/Golden` in the source tree, where updated goldens go.
    static var sourceDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    }

    static func text(_ fileName: String) throws -> String? {
        guard let url = bundleDirectory?.appendingPathComponent(fileName),
            FileManager.default.fileExists(atPath: url.path)
        else { return nil }
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The packet bytes of `<name>.hex`: lowercase hex, any whitespace ignored.
    static func packet(_ name: String) throws -> [UInt8] {
        guard let text = try text("\(name).hex") else { throw MissingFile(name: "\(name).hex") }
        let digits = Array(text.unicodeScalars.filter { !$0.properties.isWhitespace })
        precondition(digits.count % 2 == 0, "\(name).hex has an odd number of hex digits")
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0]) + String(digits[$0 + 1]), radix: 16)! }
    }

    static func buffer(_ name: String) throws -> ByteBuffer { ByteBuffer(bytes: try packet(name)) }

    static func write(_ text: String, to fileName: String) throws {
        try text.write(to: sourceDirectory.appendingPathComponent(fileName), atomically: true, encoding: .utf8)
    }

    /// The names of every `.hex` file in the bundle, so a new capture without a `GoldenCapture` entry is noticed.
    static func hexFileNames() throws -> [String] {
        guard let directory = bundleDirectory else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".hex") }
            .map { String($0.dropLast(4)) }
            .sorted()
    }

    /// A line diff of two texts (`-` expected, `+` actual), for a readable failure message.
    static func diff(expected: String, actual: String) -> String {
        let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var removed: [Int: String] = [:]
        var inserted: [Int: String] = [:]
        for change in actualLines.difference(from: expectedLines) {
            switch change {
            case .remove(let offset, let line, _): removed[offset] = line
            case .insert(let offset, let line, _): inserted[offset] = line
            }
        }
        var output: [String] = []
        var expectedIndex = 0
        var actualIndex = 0
        while expectedIndex < expectedLines.count || actualIndex < actualLines.count {
            if let line = removed[expectedIndex] {
                output.append("- \(line)")
                expectedIndex += 1
            } else if let line = inserted[actualIndex] {
                output.append("+ \(line)")
                actualIndex += 1
            } else {
                if expectedIndex < expectedLines.count { output.append("  \(expectedLines[expectedIndex])") }
                expectedIndex += 1
                actualIndex += 1
            }
        }
        return output.joined(separator: "\n")
    }
}

