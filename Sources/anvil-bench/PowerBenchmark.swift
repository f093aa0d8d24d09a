import ApplianceTesting
import ArgumentParser
import Foundation
import FreeIPMIPower
import ProvisioningModel

/// Power-status sync across many BMCs (ipmi_sim instances on 127.0.0.1): Anvil's FreeIPMIPower,
/// FreeIPMI's `ipmipower` (all hosts in one process) and `ipmitool` (one process per BMC, as scripts
/// run it) against the same BMCs in the same run. Wall time per round and per-command latency.
struct PowerBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "power", abstract: "Power status across simulated BMCs: Anvil against ipmipower and ipmitool.")

    @Option(help: "Simulated BMCs (ipmi_sim processes).") var bmcs = 50
    @Option(help: "Commands in flight at once for Anvil and ipmitool (Anvil's power.concurrency default).") var concurrency = 16
    @Option(help: "Rounds per tool; the median round is shown.") var rounds = 5

    func run() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-bench-power")
        defer { directory.remove() }
        let password = "bench-\(UUID().uuidString.prefix(8))"
        var simulators: [IPMISimulator] = []
        defer { simulators.forEach { $0.stop() } }
        for index in 0..<bmcs {
            simulators.append(try await IPMISimulator.start(in: directory.file("bmc\(index)"), password: password))
        }
        let endpoints = simulators.map {
            BMCEndpoint(
                address: $0.address, port: $0.port, username: $0.username, password: password, cipherSuite: 3,
                workarounds: ["opensesspriv"])
        }
        // The peers read the password from files, as Anvil never takes one on a command line either.
        let passwordFile = directory.file("password")
        FileManager.default.createFile(
            atPath: passwordFile, contents: Data(password.utf8), attributes: [.posixPermissions: 0o600])
        let ipmipowerConfig = directory.file("freeipmi.conf")
        try "password \(password)\n".write(toFile: ipmipowerConfig, atomically: true, encoding: .utf8)
        chmod(ipmipowerConfig, 0o600)

        let power = FreeIPMIPower(configuration: .init(sdrCacheDirectory: directory.file("sdr-cache")))
        let concurrency = concurrency
        print("anvil-bench power: \(bmcs) ipmi_sim BMCs on 127.0.0.1, \(concurrency) in flight, \(rounds) rounds (median shown)")

        var anvil: [(wall: Double, latencies: [Double])] = []
        var ipmitool: [(wall: Double, latencies: [Double])] = []
        var ipmipower: [Double] = []
        for _ in 0..<rounds {
            anvil.append(
                try await timed {
                    try await measure(count: endpoints.count, concurrency: concurrency) { index in
                        guard try await power.perform(.status, on: endpoints[index]) != nil else {
                            throw ValidationError("no state from BMC \(index)")
                        }
                    }
                })
            ipmitool.append(
                try await timed {
                    try await measure(count: endpoints.count, concurrency: concurrency) { index in
                        let result = try await AnvilServer.run(
                            "/usr/bin/ipmitool",
                            [
                                "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", "\(endpoints[index].port)", "-U", "admin",
                                "-f", passwordFile, "chassis", "power", "status",
                            ])
                        guard result.status == 0 else { throw ValidationError("ipmitool: \(result.stderr)") }
                    }
                })
            let hosts = endpoints.map(\.name).joined(separator: ",")
            let start = ContinuousClock.now
            let result = try await AnvilServer.run(
                "/usr/sbin/ipmipower",
                ["-h", hosts, "-u", "admin", "--config-file", ipmipowerConfig, "-I", "3", "-W", "opensesspriv", "--stat"])
            guard result.status == 0, result.stdout.split(separator: "\n").count == endpoints.count else {
                throw ValidationError("ipmipower: \(result.stdout)\(result.stderr)")
            }
            ipmipower.append((ContinuousClock.now - start).seconds)
        }

        let anvilRound = median(anvil)
        let ipmitoolRound = median(ipmitool)
        let ipmipowerWall = ipmipower.sorted()[ipmipower.count / 2]
        func line(_ name: String, _ wall: Double, _ latencies: [Double]?) -> String {
            let ratio = String(format: "%.2f", wall / anvilRound.wall)
            return name.padding(toLength: 34, withPad: " ", startingAt: 0)
                + String(format: "%8.3f s", wall).padding(toLength: 14, withPad: " ", startingAt: 0)
                + (latencies.map { "\(ms($0, 0.5)) / \(ms($0, 0.99)) ms" } ?? "-").padding(
                    toLength: 22, withPad: " ", startingAt: 0)
                + "\(ratio)×"
        }
        print(
            "tool".padding(toLength: 34, withPad: " ", startingAt: 0)
                + "wall/round".padding(toLength: 14, withPad: " ", startingAt: 0)
                + "command p50 / p99".padding(toLength: 22, withPad: " ", startingAt: 0) + "peer time / Anvil time")
        print(line("anvil (FreeIPMIPower)", anvilRound.wall, anvilRound.latencies))
        print(line("ipmipower (one process, all BMCs)", ipmipowerWall, nil))
        print(line("ipmitool (a process per BMC)", ipmitoolRound.wall, ipmitoolRound.latencies))
    }

    private func timed(_ body: () async throws -> [Double]) async throws -> (wall: Double, latencies: [Double]) {
        let start = ContinuousClock.now
        let latencies = try await body()
        return ((ContinuousClock.now - start).seconds, latencies)
    }

    private func median(_ rounds: [(wall: Double, latencies: [Double])]) -> (wall: Double, latencies: [Double]) {
        rounds.sorted { $0.wall < $1.wall }[rounds.count / 2]
    }
}
