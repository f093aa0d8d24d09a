import Logging
import ProvisioningModel
import ServiceLifecycle

/// The periodic power-state sync and sensor poll, as a service of the appliance. Each runs on its
/// own interval (0 turns it off); a failing round is logged and the next one runs anyway.
struct PowerSchedule: Service {
    let operations: PowerOperations
    let syncInterval: Duration?
    let sensorInterval: Duration?
    let logger: Logger

    func run() async throws {
        // Sleeping rounds end at once on SIGTERM instead of holding the shutdown up for an interval.
        try await cancelWhenGracefulShutdown { await runRounds() }
    }

    private func runRounds() async {
        await withDiscardingTaskGroup { group in
            if let syncInterval {
                group.addTask {
                    await every(syncInterval, "power sync") {
                        let drifted = try await operations.syncPowerStates()
                        if !drifted.isEmpty { logger.notice("power drift", metadata: ["machines": "\(drifted)"]) }
                    }
                }
            }
            if let sensorInterval {
                group.addTask { await every(sensorInterval, "sensor poll") { _ = try await operations.pollSensors() } }
            }
        }
    }

    private func every(_ interval: Duration, _ name: String, _ body: @Sendable () async throws -> Void) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do { try await body() } catch { logger.warning("\(name) failed", metadata: ["error": "\(error)"]) }
        }
    }
}
