import ArgumentParser
import Foundation

/// `anvil-bench inventory` (the default) and `anvil-bench power`.
@main
struct AnvilBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anvil-bench", abstract: "Anvil's benchmarks: figures printed side by side with peers, never asserted.",
        subcommands: [InventoryBenchmark.self, PowerBenchmark.self, CallHomeBenchmark.self],
        defaultSubcommand: InventoryBenchmark.self)
}

/// Runs `count` operations on `concurrency` workers; returns each operation's latency in seconds.
func measure(count: Int, concurrency: Int, _ operation: @escaping @Sendable (Int) async throws -> Void) async throws -> [Double] {
    try await withThrowingTaskGroup(of: [Double].self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var latencies: [Double] = []
                var index = worker
                while index < count {
                    let start = ContinuousClock.now
                    try await operation(index)
                    latencies.append((ContinuousClock.now - start).seconds)
                    index += concurrency
                }
                return latencies
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }
    }
}

func ms(_ latencies: [Double], _ quantile: Double) -> String {
    guard !latencies.isEmpty else { return "-" }
    let sorted = latencies.sorted()
    return String(format: "%.2f", sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))] * 1000)
}

/// Points the server harness at `anvil` (a flag), else $ANVIL_BINARY, else the `anvil` next to this program.
func useAnvilBinary(_ anvil: String?) {
    if let anvil {
        setenv("ANVIL_BINARY", anvil, 1)
    } else if ProcessInfo.processInfo.environment["ANVIL_BINARY"] == nil {
        let sibling = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("anvil")
            .path
        setenv("ANVIL_BINARY", sibling, 1)
    }
}
