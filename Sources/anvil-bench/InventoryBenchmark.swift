import ApplianceTesting
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Inventory benchmark through the HTTP API of a real `anvil serve`: create rate, filtered list
/// pages, lookups by MAC (p50/p99), and the server's memory at rest and when full.
/// Figures are printed, never asserted: this is a measurement, not a test.
struct InventoryBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory", abstract: "Measure the inventory through the admin API of a real anvil serve.")

    @Option(help: "Machines to create.") var machines = 100_000
    @Option(help: "Concurrent API clients.") var concurrency = 16
    @Option(help: "Requests per read measurement.") var reads = 2_000
    @Option(help: "The anvil binary (default: $ANVIL_BINARY or the one next to this program).") var anvil: String?

    func run() async throws {
        useAnvilBinary(anvil)
        let directory = try TemporaryDirectory(prefix: "anvil-bench")
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--log-level", "warning"])
        defer { server.kill9() }
        let secret = try String(contentsOfFile: directory.file("data/admin.token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(directory.file("data/tls/ca.pem")))
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                tlsConfiguration: tls,
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)))
        let api = BenchClient(client: client, base: server.adminURL, secret: secret)

        try await Task.sleep(for: .seconds(2))
        let restRSS = residentMemory(pid: server.pid)
        print("anvil-bench: \(machines) machines, \(concurrency) clients, anvil at \(server.adminURL)")

        for rack in 0..<50 {
            try await api.send(.POST, "/api/v1/profiles", body: #"{"name":"rack-\#(rack)"}"#, expect: .created)
        }
        let createStart = ContinuousClock.now
        let createLatencies = try await measure(count: machines, concurrency: concurrency) { index in
            try await api.send(.POST, "/api/v1/machines", body: Self.machineJSON(index), expect: .created)
        }
        let createSeconds = (ContinuousClock.now - createStart).seconds
        let fullRSS = residentMemory(pid: server.pid)

        let listLatencies = try await measure(count: reads, concurrency: concurrency) { index in
            let state = ["discovered", "ready"][index % 2]
            try await api.send(.GET, "/api/v1/machines?state=\(state)&arch=amd64&limit=100", expect: .ok)
        }
        let pageLatencies = try await measure(count: reads, concurrency: concurrency) { index in
            try await api.send(.GET, "/api/v1/machines?profile=rack-\(index % 50)&limit=100", expect: .ok)
        }
        let macLatencies = try await measure(count: reads, concurrency: concurrency) { index in
            let machine = (index * 7919) % machines
            try await api.send(.GET, "/api/v1/machines?mac=\(Self.mac(machine))", expect: .ok)
        }
        try await client.shutdown()

        print("")
        print(row("measurement", "result", "p50 ms", "p99 ms"))
        print(
            row(
                "create (POST)", String(format: "%.0f/s", Double(machines) / createSeconds), ms(createLatencies, 0.5),
                ms(createLatencies, 0.99)))
        print(row("list state+arch, page of 100", "\(reads) reqs", ms(listLatencies, 0.5), ms(listLatencies, 0.99)))
        print(row("list by profile, page of 100", "\(reads) reqs", ms(pageLatencies, 0.5), ms(pageLatencies, 0.99)))
        print(row("get by MAC (?mac=)", "\(reads) reqs", ms(macLatencies, 0.5), ms(macLatencies, 0.99)))
        print(row("RSS at rest", "\(restRSS / 1024) MiB", "", ""))
        print(row("RSS with \(machines) machines", "\(fullRSS / 1024) MiB", "", ""))
    }

    static func mac(_ index: Int) -> String {
        String(format: "52:54:02:%02x:%02x:%02x", (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff)
    }

    static func machineJSON(_ index: Int) -> String {
        let state = index % 2 == 0 ? "discovered" : "ready"
        return
            #"{"name":"bench-\#(index)","state":"discovered","profiles":["rack-\#(index % 50)"],"interfaces":[{"mac":"\#(mac(index))","boot":true}],"#
            + #""facts":{"systemSerial":"BENCH\#(index)","memoryBytes":68719476736,"cpuCores":32}}"#
            .replacingOccurrences(of: #""state":"discovered""#, with: #""state":"\#(state)""#)
    }

    func row(_ a: String, _ b: String, _ c: String, _ d: String) -> String {
        a.padding(toLength: 34, withPad: " ", startingAt: 0) + b.padding(toLength: 16, withPad: " ", startingAt: 0)
            + c.padding(toLength: 10, withPad: " ", startingAt: 0) + d
    }

    /// VmRSS of a process in KiB, from /proc.
    func residentMemory(pid: Int32?) -> Int {
        guard let pid, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
}

struct BenchClient: Sendable {
    let client: HTTPClient
    let base: String
    let secret: String

    func send(_ method: HTTPMethod, _ path: String, body: String? = nil, expect: HTTPResponseStatus) async throws {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(secret)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        guard response.status == expect else {
            throw ValidationError("\(method) \(path): HTTP \(response.status.code) \(String(buffer: bytes))")
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
