import ApplianceTesting
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Call-home ingest through the boot plane of a real `anvil serve`: N simulated agents post a
/// realistic inventory (a Dell R640's, each with its own UUID, serials and MACs), first as unknown
/// machines (each becomes a discovered machine), then again with the token they got back (a reboot:
/// matched, unchanged). Machines per second and latency per call-home.
struct CallHomeBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callhome", abstract: "Call-home ingest: simulated agents posting inventories to a real anvil serve.")

    @Option(help: "Simulated machines per round (comma-separated rounds, each on a fresh server).") var machines = "1000,10000"
    @Option(help: "Agents posting at once.") var concurrency = 64
    @Option(help: "The anvil binary (default: $ANVIL_BINARY or the one next to this program).") var anvil: String?

    func run() async throws {
        useAnvilBinary(anvil)
        let template = try JSONSerialization.jsonObject(
            with: Data(
                contentsOf: URL(
                    fileURLWithPath: AnvilServer.repositoryRoot + "/Tests/ApplianceTests/GoldenInventories/dell-r640.json")))
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)))
        print("anvil-bench callhome: \(concurrency) agents at once; inventory of a Dell R640 (2 disks, 4 DIMMs, 4 NICs, BMC)")
        print(
            "round".padding(toLength: 40, withPad: " ", startingAt: 0)
                + "machines/s".padding(toLength: 14, withPad: " ", startingAt: 0) + "p50 ms    p99 ms")
        for count in machines.split(separator: ",").compactMap({ Int($0) }) {
            let bodies = try (0..<count).map { try Self.inventory(template, index: $0) }
            let directory = try TemporaryDirectory(prefix: "anvil-bench-callhome")
            defer { directory.remove() }
            // Unknown call-homes are rate-limited in production (50/s); the benchmark measures ingest, not the limiter.
            try "boot:\n  unknownCallHomesPerSecond: 1000000\n  unknownCallHomeBurst: 1000000\n"
                .write(toFile: directory.file("anvil.yaml"), atomically: true, encoding: .utf8)
            let server = AnvilServer(dataDirectory: directory.file("data"))
            try await server.start(extraArguments: [
                "--log-level", "warning", "--tftp-listen", "off", "--config", directory.file("anvil.yaml"),
            ])
            defer { server.kill9() }
            let url = server.bootURL + "/api/v1/machines/callhome"
            let tokens = Tokens(count: count)

            for (name, authenticated) in [
                ("\(count) first call-homes (discovered)", false), ("\(count) reboots (token, unchanged)", true),
            ] {
                let start = ContinuousClock.now
                let latencies = try await measure(count: count, concurrency: concurrency) { index in
                    let token = try await Self.post(client, url, bodies[index], token: authenticated ? tokens.get(index) : nil)
                    tokens.set(index, token)
                }
                let rate = Double(count) / (ContinuousClock.now - start).seconds
                print(
                    name.padding(toLength: 40, withPad: " ", startingAt: 0)
                        + String(format: "%.0f", rate).padding(toLength: 14, withPad: " ", startingAt: 0)
                        + ms(latencies, 0.5).padding(toLength: 10, withPad: " ", startingAt: 0) + ms(latencies, 0.99))
            }
        }
        try await client.shutdown()
    }

    /// The template with machine `index`'s own identity: UUID, serials, MACs, disk serials and WWNs.
    static func inventory(_ template: Any, index: Int) throws -> ByteBuffer {
        guard var report = template as? [String: Any], var facts = report["facts"] as? [String: Any] else {
            throw ValidationError("the template inventory is not a call-home report")
        }
        let mac = { (nic: Int) in
            String(format: "02:a0:%02x:%02x:%02x:%02x", (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff, nic)
        }
        facts["systemUUID"] = String(format: "5a1b0000-0000-4000-8000-%012x", index)
        facts["systemSerial"] = "BENCH\(index)"
        facts["chassisSerial"] = "BENCH\(index)"
        facts["boardSerial"] = "BOARD\(index)"
        facts["nics"] = ((facts["nics"] as? [[String: Any]]) ?? []).enumerated().map { nic, fields in
            fields.merging(["mac": mac(nic)]) { $1 }
        }
        facts["disks"] = ((facts["disks"] as? [[String: Any]]) ?? []).enumerated().map { disk, fields in
            fields.merging(["serial": "DISK\(index)-\(disk)", "wwn": String(format: "naa.5%015x", index * 8 + disk)]) { $1 }
        }
        if var bmc = facts["bmc"] as? [String: Any] {
            bmc["mac"] = mac(0x3f)
            bmc["address"] = "10.\(20 + (index >> 16)).\((index >> 8) & 0xff).\(index & 0xff)"
            facts["bmc"] = bmc
        }
        report["facts"] = facts
        report["bootMAC"] = mac(0)
        return ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: report))
    }

    /// Posts one call-home; returns the token the answer carries.
    static func post(_ client: HTTPClient, _ url: String, _ body: ByteBuffer, token: String?) async throws -> String? {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(body)
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .created || response.status == .ok else {
            throw ValidationError("call-home: HTTP \(response.status.code) \(String(buffer: bytes))")
        }
        let answer = try JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any]
        return answer?["token"] as? String
    }

    /// Each simulated agent's token, between the rounds.
    final class Tokens: Sendable {
        private let tokens: Mutex<[String?]>
        init(count: Int) { tokens = Mutex([String?](repeating: nil, count: count)) }
        func get(_ index: Int) -> String? { tokens.withLock { $0[index] } }
        func set(_ index: Int, _ token: String?) { tokens.withLock { $0[index] = token } }
    }
}
