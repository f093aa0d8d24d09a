import CFreeIPMI
import Dispatch
import Foundation
import ProvisioningModel
import Synchronization

/// `PowerControl` over IPMI 2.0 (lanplus) with FreeIPMI. Each BMC has its own command lane: one
/// command at a time, a minimum pause between commands (small BMCs drop sessions opened back to
/// back), and a bounded retry of transient failures (no answer, busy) that never repeats a cycle or
/// a reset the BMC may have carried out. Lanes run FreeIPMI's blocking calls on
/// their own threads, so a BMC that never answers delays nothing but its own queue.
public final class FreeIPMIPower: PowerControl {
    public struct Configuration: Sendable {
        public var timeouts: IPMITimeouts
        /// Extra attempts after a transient failure: when no session opened, or for a command that is safe
        /// to send twice (never after an authentication failure, never for cycle, reset or soft-off).
        public var retries: Int
        /// The pause between the end of one command to a BMC and the start of the next.
        public var minimumCommandInterval: Duration
        /// FreeIPMI's SDR cache, one file per BMC (in the data directory).
        public var sdrCacheDirectory: String

        public init(
            timeouts: IPMITimeouts = IPMITimeouts(), retries: Int = 1, minimumCommandInterval: Duration = .milliseconds(100),
            sdrCacheDirectory: String
        ) {
            self.timeouts = timeouts
            self.retries = retries
            self.minimumCommandInterval = minimumCommandInterval
            self.sdrCacheDirectory = sdrCacheDirectory
        }
    }

    public let configuration: Configuration
    private let lanes = Mutex<[String: BMCCommandLane]>([:])

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The state after the action; nil after a cycle, which leaves the machine off for a moment
    /// (the BMC's power-cycle interval) before it comes back on, and after a reset, which ipmi_sim
    /// (like some real BMCs) answers by dropping the session.
    public func perform(_ action: PowerAction, on bmc: BMCEndpoint) async throws(PowerError) -> PowerState? {
        let repeatable: Bool =
            switch action {
            case .status, .on, .off, .identify: true
            case .cycle, .reset, .softOff: false
            }
        return try await run(on: bmc, repeatable: repeatable) { session throws(PowerError) in
            switch action {
            case .status: break
            case .on: try session.chassisControl(IPMI_CHASSIS_CONTROL_POWER_UP)
            case .off: try session.chassisControl(IPMI_CHASSIS_CONTROL_POWER_DOWN)
            case .softOff: try session.chassisControl(IPMI_CHASSIS_CONTROL_INITIATE_SOFT_SHUTDOWN)
            case .cycle:
                try session.chassisControl(IPMI_CHASSIS_CONTROL_POWER_CYCLE)
                return nil
            case .reset:
                try session.chassisControl(IPMI_CHASSIS_CONTROL_HARD_RESET)
                return nil
            case .identify: try session.identify()
            }
            return try session.powerIsOn() ? .on : .off
        }
    }

    public func setNextBoot(_ boot: BootOverride, on bmc: BMCEndpoint) async throws(PowerError) {
        try await run(on: bmc, repeatable: true) { session throws(PowerError) in try session.setBootFlags(boot) }
    }

    public func info(of bmc: BMCEndpoint) async throws(PowerError) -> BMCInfo {
        try await run(on: bmc, repeatable: true) { session throws(PowerError) in try session.deviceInfo() }
    }

    public func sensors(of bmc: BMCEndpoint) async throws(PowerError) -> [SensorReading] {
        let configuration = configuration
        return try await lane(for: bmc).run(retries: configuration.retries) { () throws(LaneFailure) in
            do throws(PowerError) {
                return try SensorReader.read(
                    bmc, timeouts: configuration.timeouts, cacheDirectory: configuration.sdrCacheDirectory)
            } catch {
                throw LaneFailure(error, repeatable: true)
            }
        }
    }

    /// The most commands that were ever in flight at once on one BMC's lane (1 when serialization holds).
    public func peakCommandsInFlight(on bmc: BMCEndpoint) -> Int {
        lanes.withLock { $0[bmc.name]?.peakInFlight } ?? 0
    }

    /// Opens a session, runs `body`, closes the session: one command, one session, so a BMC that
    /// reboots between commands costs nothing.
    private func run<T: Sendable>(
        on bmc: BMCEndpoint, repeatable: Bool, _ body: @escaping @Sendable (IPMISession) throws(PowerError) -> T
    )
        async throws(PowerError) -> T
    {
        let timeouts = configuration.timeouts
        return try await lane(for: bmc).run(retries: configuration.retries) { () throws(LaneFailure) in
            let session: IPMISession
            do throws(PowerError) { session = try IPMISession(bmc, timeouts: timeouts) } catch {
                // Nothing was sent yet: repeating is always safe.
                throw LaneFailure(error, repeatable: true)
            }
            do throws(PowerError) { return try body(session) } catch {
                throw LaneFailure(error, repeatable: repeatable)
            }
        }
    }

    private func lane(for bmc: BMCEndpoint) -> BMCCommandLane {
        lanes.withLock { lanes in
            if let lane = lanes[bmc.name] { return lane }
            let lane = BMCCommandLane(name: bmc.name, minimumInterval: configuration.minimumCommandInterval)
            lanes[bmc.name] = lane
            return lane
        }
    }
}

/// One BMC's serial queue of blocking commands, on a Dispatch queue of its own (never on the
/// Swift concurrency pool or a NIO event loop).
final class BMCCommandLane: Sendable {
    private let queue: DispatchQueue
    private let minimumInterval: Duration
    private struct Counters {
        var lastFinished: ContinuousClock.Instant?
        var inFlight = 0
        var peakInFlight = 0
    }
    private let counters = Mutex(Counters())

    init(name: String, minimumInterval: Duration) {
        queue = DispatchQueue(label: "anvil.ipmi.\(name)")
        self.minimumInterval = minimumInterval
    }

    var peakInFlight: Int { counters.withLock { $0.peakInFlight } }

    func run<T: Sendable>(retries: Int, _ command: @escaping @Sendable () throws(LaneFailure) -> T) async throws(PowerError) -> T
    {
        let result: Result<T, PowerError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: self.runNow(retries: retries, command))
            }
        }
        return try result.get()
    }

    /// On the lane's queue: wait out the interval, then try up to `1 + retries` times while failures are
    /// transient and the command may be repeated.
    private func runNow<T>(retries: Int, _ command: () throws(LaneFailure) -> T) -> Result<T, PowerError> {
        let wait = counters.withLock { counters -> Duration in
            counters.inFlight += 1
            counters.peakInFlight = max(counters.peakInFlight, counters.inFlight)
            guard let last = counters.lastFinished else { return .zero }
            return max(.zero, minimumInterval - (ContinuousClock.now - last))
        }
        if wait > .zero {
            Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18)
        }
        defer {
            counters.withLock { counters in
                counters.inFlight -= 1
                counters.lastFinished = .now
            }
        }
        var attempt = 0
        while true {
            do {
                return .success(try command())
            } catch let failure where failure.mayRetry && attempt < retries {
                attempt += 1
            } catch {
                return .failure(error.error)
            }
        }
    }
}

/// A failed attempt on a lane, and whether sending it again is safe (nothing was sent, or the
/// command means the same when it arrives twice).
struct LaneFailure: Error {
    let error: PowerError
    let repeatable: Bool

    init(_ error: PowerError, repeatable: Bool) {
        self.error = error
        self.repeatable = repeatable
    }

    var mayRetry: Bool { repeatable && error.transient && error.code != .authenticationFailed }
}
