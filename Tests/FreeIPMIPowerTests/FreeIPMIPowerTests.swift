import ApplianceTesting
import Foundation
import FreeIPMIPower
import ProvisioningModel
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// FreeIPMIPower against real BMCs: OpenIPMI's ipmi_sim on 127.0.0.1.
@Suite(.serialized) struct FreeIPMIPowerTests {
    /// ipmi_sim has no cipher suite 17 and needs the "open session privilege" workaround (see shared/notes).
    static func endpoint(_ simulator: IPMISimulator, password: String? = nil, cipherSuite: UInt8 = 3) -> BMCEndpoint {
        BMCEndpoint(
            address: simulator.address, port: simulator.port, username: simulator.username,
            password: password ?? simulator.password,
            cipherSuite: cipherSuite, workarounds: ["opensesspriv"])
    }

    static func power(_ directory: TemporaryDirectory, sessionTimeout: Duration = .seconds(10)) -> FreeIPMIPower {
        FreeIPMIPower(
            configuration: .init(
                timeouts: IPMITimeouts(session: sessionTimeout), retries: 1,
                minimumCommandInterval: .milliseconds(20), sdrCacheDirectory: directory.file("sdr-cache")))
    }

    /// Polls `condition` every 100 ms for up to 30 s (a liveness bound, not a measurement).
    static func waitUntil(_ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for _ in 0..<300 where !condition() { try await Task.sleep(for: .milliseconds(100)) }
        #expect(condition(), "still false after 30 s", sourceLocation: sourceLocation)
    }

    /// Runs `body` with `count` fresh simulators, stopping them (by PID) whatever happens.
    static func withSimulators(_ count: Int, _ body: (TemporaryDirectory, [IPMISimulator]) async throws -> Void) async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-ipmi")
        var simulators: [IPMISimulator] = []
        defer {
            simulators.forEach { $0.stop() }
            directory.remove()
        }
        for index in 0..<count { simulators.append(try await IPMISimulator.start(in: directory.file("bmc\(index)"))) }
        try await body(directory, simulators)
    }

    @Test func powerOnOffCycleResetAndStatusDriveTheChassis() async throws {
        try await Self.withSimulators(1) { directory, simulators in
            let bmc = simulators[0]
            let power = Self.power(directory)
            let endpoint = Self.endpoint(bmc)

            #expect(try await power.perform(.status, on: endpoint) == .off)
            #expect(try await power.perform(.on, on: endpoint) == .on)
            #expect(bmc.isPoweredOn)
            // A cycle is off now, on again a moment later (ipmi_sim waits about a second): no state to report yet.
            #expect(try await power.perform(.cycle, on: endpoint) == nil)
            try await Self.waitUntil { bmc.isPoweredOn }
            #expect(try await power.perform(.reset, on: endpoint) == nil)
            #expect(try await power.perform(.status, on: endpoint) == .on)
            #expect(try await power.perform(.identify, on: endpoint) == .on)
            #expect(try await power.perform(.off, on: endpoint) == .off)
            #expect(!bmc.isPoweredOn)

            let powerAndReset = bmc.chassisCalls.filter { $0.hasPrefix("set power") || $0.hasPrefix("set reset") }
            #expect(
                powerAndReset == ["set power 1", "set power 0", "set power 1", "set reset 1", "set power 0"],
                "\(bmc.chassisCalls)")
            #expect(bmc.chassisCalls.contains { $0.hasPrefix("set identify") })
        }
    }

    @Test func pxeIsSetAsTheNextBootDevice() async throws {
        try await Self.withSimulators(1) { directory, simulators in
            let power = Self.power(directory)
            try await power.setNextBoot(BootOverride(device: .pxe, firmware: .uefi), on: Self.endpoint(simulators[0]))
            #expect(simulators[0].bootDevice == "pxe")
            // ipmi_sim has no word for the hard disk: "force boot from disk" reaches its chassis program as "default".
            try await power.setNextBoot(BootOverride(device: .disk, persistent: true), on: Self.endpoint(simulators[0]))
            #expect(simulators[0].bootDevice == "default")
        }
    }

    @Test func bmcInfoComesFromGetDeviceID() async throws {
        try await Self.withSimulators(1) { directory, simulators in
            let info = try await Self.power(directory).info(of: Self.endpoint(simulators[0]))
            // The emu file's `mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02`.
            #expect(
                info
                    == BMCInfo(deviceID: 0, firmwareVersion: "9.08", ipmiVersion: "2.0", manufacturerID: 0x1291, productID: 0xf02)
            )
        }
    }

    @Test func sensorsAreReadAndInterpreted() async throws {
        try await Self.withSimulators(1) { directory, simulators in
            let readings = try await Self.power(directory).sensors(of: Self.endpoint(simulators[0]))
            let byName = Dictionary(uniqueKeysWithValues: readings.map { ($0.name, $0) })
            #expect(byName["CPU Temp"]?.kind == .temperature)
            #expect(byName["CPU Temp"]?.value == 45)
            #expect(byName["CPU Temp"]?.unit == "C")
            #expect(byName["CPU Temp"]?.state == .nominal)
            #expect(byName["FAN 1"]?.kind == .fan)
            #expect(byName["FAN 1"]?.value == 6000)
            #expect(byName["FAN 1"]?.unit == "RPM")
            #expect(byName["12V"]?.kind == .voltage)
            #expect(byName["12V"]?.value.map { abs($0 - 12.0) < 0.001 } == true)
            #expect(byName["12V"]?.unit == "V")
            #expect(byName["PSU1 Status"]?.kind == .powerSupply)
            #expect(byName["PSU1 Status"]?.events.contains("Presence detected") == true, "\(readings)")
        }
    }

    @Test func aWrongPasswordIsAnAuthenticationErrorNamingTheBMC() async throws {
        try await Self.withSimulators(1) { directory, simulators in
            let endpoint = Self.endpoint(simulators[0], password: "not-the-password")
            let error = await #expect(throws: PowerError.self) { try await Self.power(directory).perform(.status, on: endpoint) }
            #expect(error?.code == .authenticationFailed)
            #expect(error?.bmc == "127.0.0.1:\(simulators[0].port)")
            #expect(error?.description.contains("127.0.0.1:\(simulators[0].port)") == true)
            #expect(error?.description.contains("not-the-password") == false)
        }
    }

    @Test func cipherSuiteZeroIsRefusedBeforeAnythingIsSent() async throws {
        try await Self.withSimulators(1) { directory, simulators in
            let endpoint = Self.endpoint(simulators[0], cipherSuite: 0)
            let power = Self.power(directory)
            let error = await #expect(throws: PowerError.self) { try await power.perform(.on, on: endpoint) }
            #expect(error?.code == .refused)
            let sensorError = await #expect(throws: PowerError.self) { try await power.sensors(of: endpoint) }
            #expect(sensorError?.code == .refused)
            #expect(!simulators[0].isPoweredOn)
        }
    }

    /// A BMC that never answers (a socket that drops everything) times out within the configured
    /// bound, with its retry, while a healthy BMC asked at the same time answers first.
    @Test func anUnreachableBMCTimesOutWhileOthersKeepAnswering() async throws {
        try await Self.withSimulators(1) { directory, simulators in
            let blackHole = try BlackHoleSocket()
            defer { blackHole.close() }
            let power = Self.power(directory, sessionTimeout: .seconds(2))
            let healthy = Self.endpoint(simulators[0])
            var silent = healthy
            silent.port = blackHole.port
            let silentBMC = silent
            enum Finished: Sendable {
                case silent(Result<PowerState?, PowerError>)
                case healthy([PowerState?])
            }

            let started = ContinuousClock.now
            // In the order they finish.
            let finished = try await withThrowingTaskGroup(of: Finished.self) { group in
                group.addTask {
                    do throws(PowerError) { return .silent(.success(try await power.perform(.status, on: silentBMC))) } catch {
                        return .silent(.failure(error))
                    }
                }
                group.addTask {
                    var states: [PowerState?] = []
                    for _ in 0..<3 { states.append(try await power.perform(.status, on: healthy)) }
                    return .healthy(states)
                }
                return try await group.reduce(into: [Finished]()) { $0.append($1) }
            }
            let elapsed = ContinuousClock.now - started
            guard finished.count == 2, case .healthy(let states) = finished[0], case .silent(let silentOutcome) = finished[1]
            else {
                Issue.record("the healthy BMC did not finish first: \(finished)")
                return
            }

            #expect(states == [.off, .off, .off])
            guard case .failure(let error) = silentOutcome else {
                Issue.record("a BMC that never answers gave \(silentOutcome)")
                return
            }
            #expect(error.code == .unreachable)
            #expect(error.bmc == "127.0.0.1:\(blackHole.port)")
            // Liveness bound: two attempts of 2 s each, with generous slack for a loaded machine.
            #expect(elapsed < .seconds(60))
        }
    }

    @Test func aTransientBMCErrorIsRetriedOnlyWhenTheCommandIsSafeToRepeat() async throws {
        try await Self.withSimulators(1) { directory, simulators in
            let bmc = simulators[0]
            let power = Self.power(directory)
            let endpoint = Self.endpoint(bmc)

            // One failure: a status read is asked again and answers.
            try bmc.failNextChassisCalls(1)
            #expect(try await power.perform(.status, on: endpoint) == .off)

            // Two failures exhaust the one retry: the error names the completion code.
            try bmc.failNextChassisCalls(2)
            do throws(PowerError) {
                _ = try await power.perform(.status, on: endpoint)
                Issue.record("a status read that failed twice succeeded")
            } catch {
                #expect(error.code == .failed)
                #expect(error.transient)
                #expect(error.reason.contains("0xFF"), "\(error.reason)")
            }

            // A cycle the BMC may have begun is never sent twice.
            let callsBefore = bmc.chassisCalls.count
            try bmc.failNextChassisCalls(1)
            do throws(PowerError) {
                _ = try await power.perform(.cycle, on: endpoint)
                Issue.record("a cycle whose chassis program failed succeeded")
            } catch {
                #expect(error.reason.contains("0xFF"), "\(error.reason)")
            }
            #expect(bmc.chassisCalls.count == callsBefore + 1, "\(bmc.chassisCalls.dropFirst(callsBefore))")
        }
    }

    @Test func commandsToOneBMCAreSerializedAndBMCsRunConcurrently() async throws {
        try await Self.withSimulators(3) { directory, simulators in
            let power = Self.power(directory)
            let states = try await withThrowingTaskGroup(of: PowerState?.self) { group in
                for simulator in simulators {
                    for _ in 0..<6 { group.addTask { try await power.perform(.status, on: Self.endpoint(simulator)) } }
                }
                return try await group.reduce(into: [PowerState?]()) { $0.append($1) }
            }
            #expect(states.count == 18)
            #expect(states.allSatisfy { $0 == .off })
            for simulator in simulators {
                #expect(power.peakCommandsInFlight(on: Self.endpoint(simulator)) == 1)
            }
        }
    }
}

/// A UDP socket on 127.0.0.1 that receives and never answers: a BMC that is down.
struct BlackHoleSocket {
    let descriptor: Int32
    let port: Int

    init() throws {
        port = try freeUDPPort()
        descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw AnvilServerError("bind black hole: \(String(cString: strerror(errno)))") }
    }

    func close() { _ = Glibc.close(descriptor) }
}
