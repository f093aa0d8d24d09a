import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real BMC for tests: OpenIPMI's `ipmi_sim` (Debian `openipmi`) on 127.0.0.1 (or inside a
/// namespace), with a user, a few sensors with full SDR records, and a chassis-control program
/// that keeps the power and boot device in files (and runs `<directory>/hook power 0|1` when
/// present, so a lab can start and stop a QEMU machine).
public final class IPMISimulator: Sendable {
    /// Sensors the simulated board has; values are what libipmimonitoring should report.
    public enum Sensor: Sendable, Hashable {
        case temperature(String, celsius: Int)
        case fan(String, rpm: Int)
        /// Volts in hundredths (1200 = 12.00 V).
        case voltage(String, centivolts: Int)
        case powerSupply(String, present: Bool)
    }

    public static let standardSensors: [Sensor] = [
        .temperature("CPU Temp", celsius: 45), .fan("FAN 1", rpm: 6000), .voltage("12V", centivolts: 1200),
        .powerSupply("PSU1 Status", present: true),
    ]

    public let address: String
    public let port: Int
    public let username: String
    public let password: String
    public let directory: String
    private let process: ChildProcess

    /// `namespace` runs it inside a test's network namespace (then `address` is an address there).
    public static func start(
        in directory: String, address: String = "127.0.0.1", port: Int? = nil, username: String = "admin",
        password: String = "bmc-pass-\(UUID().uuidString.prefix(8))", sensors: [Sensor] = standardSensors,
        namespace: NetworkNamespace? = nil, detached: Bool = false
    ) async throws -> IPMISimulator {
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
        let port = try port ?? freeUDPPort()
        let chassis = directory + "/chassis-control"
        try chassisScript.write(toFile: chassis, atomically: true, encoding: .utf8)
        chmod(chassis, 0o755)
        try "0\n".write(toFile: directory + "/power", atomically: true, encoding: .utf8)
        try lanConfiguration(address: address, port: port, username: username, password: password, chassis: chassis)
            .write(toFile: directory + "/lan.conf", atomically: true, encoding: .utf8)
        try emulation(sensors).write(toFile: directory + "/bmc.emu", atomically: true, encoding: .utf8)
        // Without -n (and with stdin from /dev/null) ipmi_sim aborts on its console.
        var command = [
            "/usr/bin/ipmi_sim", "-n", "-c", directory + "/lan.conf", "-f", directory + "/bmc.emu", "-s", directory + "/state",
        ]
        if let namespace { command = namespace.wrap(command) }
        let process = try ChildProcess.spawn(
            command, stdout: directory + "/ipmi_sim.log", stderr: directory + "/ipmi_sim.log", detached: detached)
        let simulator = IPMISimulator(
            address: address, port: port, username: username, password: password, directory: directory, process: process)
        // A bad emu line stops ipmi_sim before it opens its port while the process stays alive: wait for the socket.
        for _ in 0..<400 {
            if simulator.isListening { return simulator }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let exit = process.status.map { "exited with \($0)" } ?? "still running"
        process.killAndWait()
        let log = (try? String(contentsOfFile: directory + "/ipmi_sim.log", encoding: .utf8)) ?? ""
        throw AnvilServerError("ipmi_sim (\(exit)) did not open UDP \(address):\(port) within 20 s: \(log)")
    }

    private init(address: String, port: Int, username: String, password: String, directory: String, process: ChildProcess) {
        self.address = address
        self.port = port
        self.username = username
        self.password = password
        self.directory = directory
        self.process = process
    }

    /// ipmi_sim's PID (`ip netns exec` execs in place).
    public var pid: pid_t { process.pid }

    public var isPoweredOn: Bool { Self.isPoweredOn(in: directory) }
    /// The chassis power state from a BMC directory's files (what ipmi_sim answers).
    public static func isPoweredOn(in directory: String) -> Bool { state("power", in: directory) == "1" }
    /// What the BMC was last told to boot from next (`pxe`, `disk`…), nil when never set.
    public var bootDevice: String? { state("boot") }
    /// Every call ipmi_sim made to the chassis program, oldest first (`set power 1`, `get power boot`).
    public var chassisCalls: [String] {
        ((try? String(contentsOfFile: directory + "/chassis.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Makes the next `count` calls to the chassis program fail, as a real BMC's controller
    /// sometimes does: ipmi_sim then answers with completion code 0xFF (unspecified error).
    public func failNextChassisCalls(_ count: Int) throws {
        try "\(count)\n".write(toFile: directory + "/fail", atomically: true, encoding: .utf8)
    }

    public func setPower(_ on: Bool) throws {
        try (on ? "1\n" : "0\n").write(toFile: directory + "/power", atomically: true, encoding: .utf8)
    }

    /// Stops ipmi_sim and the machine it powers, if any (both by PID).
    public func stop() {
        stopMachine()
        process.killAndWait()
    }

    // MARK: - A machine behind the BMC

    /// Wires chassis control to a machine: power on starts `command` detached inside `namespace`
    /// (QEMU, from `QEMUMachine.command`), power off kills it, reset restarts it, and the power
    /// state follows the process (a machine that exits is off).
    public func wirePower(to command: [String], in namespace: NetworkNamespace) throws {
        let quoted = namespace.wrap(command).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(
            separator: " ")
        let hook = """
            #!/bin/sh
            dir=$(dirname "$0")
            pidfile="$dir/machine.pid"
            running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
            start() {
                running && return 0
                # setsid: the machine must not hold ipmi_sim's output or die with the chassis program.
                setsid \(quoted) </dev/null >>"$dir/machine.log" 2>&1 &
                echo $! > "$pidfile"
            }
            stop() {
                running && kill -9 "$(cat "$pidfile")"
                rm -f "$pidfile"
            }
            case "$1 $2" in
            "power 1") start ;;
            "power 0") stop ;;
            "reset 1") stop; start ;;
            esac

            """
        try hook.write(toFile: directory + "/hook", atomically: true, encoding: .utf8)
        chmod(directory + "/hook", 0o755)
    }

    /// The PID of the machine behind the BMC while it runs.
    public var machinePID: pid_t? { Self.machinePID(in: directory) }

    /// The machine's PID from a BMC directory's files, for a lab that no longer holds the simulator object.
    public static func machinePID(in directory: String) -> pid_t? {
        guard let pid = state("machine.pid", in: directory).flatMap({ pid_t($0) }), kill(pid, 0) == 0 else { return nil }
        return pid
    }

    public func stopMachine() {
        guard let pid = machinePID else { return }
        kill(pid, SIGKILL)
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(20_000) }
    }

    private func state(_ name: String) -> String? { Self.state(name, in: directory) }

    private static func state(_ name: String, in directory: String) -> String? {
        (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The UDP socket is in the process's own network namespace's table.
    private var isListening: Bool {
        // Read to the end: procfs files report size 0, and the table outgrows one page with many sockets.
        let handle = FileHandle(forReadingAtPath: "/proc/\(process.pid)/net/udp")
        defer { try? handle?.close() }
        let table = String(decoding: (try? handle?.readToEnd()) ?? Data(), as: UTF8.self)
        let portHex = ":" + String(format: "%04X", port)
        return table.split(separator: "\n").contains { line in
            line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first?.hasSuffix(portHex) == true
        }
    }

    // MARK: - Files

    /// ipmi_sim runs `PROGRAM get power boot` (answering `power:1`, `boot:pxe`) and `PROGRAM set power 1` /
    /// `set boot pxe`. It must return at once and leave no child holding its output.
    private static let chassisScript = """
        #!/bin/sh
        dir=$(dirname "$0")
        echo "$*" >> "$dir/chassis.log"
        # Fault injection: while `fail` holds a count above 0, fail that many calls (ipmi_sim answers 0xFF).
        failures=$(cat "$dir/fail" 2>/dev/null || echo 0)
        if [ "$failures" -gt 0 ]; then echo $((failures - 1)) > "$dir/fail"; exit 1; fi
        action=$1; shift
        case $action in
        get)
            for what in "$@"; do
                case $what in
                power)
                    # With a machine wired, power follows its process.
                    if [ -f "$dir/machine.pid" ] && ! kill -0 "$(cat "$dir/machine.pid")" 2>/dev/null; then
                        echo 0 > "$dir/power"; rm -f "$dir/machine.pid"
                    fi
                    echo "power:$(cat "$dir/power" 2>/dev/null || echo 0)" ;;
                boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)" ;;
                esac
            done ;;
        set)
            while [ $# -ge 2 ]; do
                echo "$2" > "$dir/$1"
                if [ -x "$dir/hook" ]; then "$dir/hook" "$1" "$2" </dev/null >>"$dir/hook.log" 2>&1; fi
                shift 2
            done ;;
        esac
        exit 0

        """

    private static func lanConfiguration(
        address: String, port: Int, username: String, password: String, chassis: String
    ) -> String {
        """
        name "anvil-test-bmc"
        set_working_mc 0x20
          startlan 1
            addr \(address) \(port)
            priv_limit admin
            allowed_auths_callback none md2 md5 straight
            allowed_auths_user none md2 md5 straight
            allowed_auths_operator none md2 md5 straight
            allowed_auths_admin none md2 md5 straight
            guid a123456789abcdefa123456789abcdef
          endlan
          chassis_control "\(chassis)"
          user 2 true "\(username)" "\(password)" admin 10 none md2 md5 straight

        """
    }

    private static func emulation(_ sensors: [Sensor]) -> String {
        var lines = [
            "mc_setbmc 0x20",
            "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr",
            "sel_enable 0x20 1000 0x0a",
        ]
        for (index, sensor) in sensors.enumerated() {
            let number = index + 1
            let record = fullSensorRecord(recordID: number, number: number, sensor)
            lines.append("sensor_add 0x20 0 \(number) \(hex(sensor.type)) \(hex(sensor.isDiscrete ? 0x6f : 0x01))")
            lines.append("main_sdr_add 0x20 " + record.map(hex).joined(separator: " "))
            if case .powerSupply(_, let present) = sensor {
                lines.append("sensor_set_bit_clr_rest 0x20 0 \(number) 0 \(present ? 1 : 0)")
                lines.append(
                    "sensor_set_event_support 0x20 0 \(number) enable scanning per-state "
                        + "000000000000001 000000000000001 000000000000001 000000000000001")
            } else {
                let (raw, thresholds) = sensor.raw
                lines.append("sensor_set_value 0x20 0 \(number) \(hex(raw)) 0")
                lines.append(
                    "sensor_set_threshold 0x20 0 \(number) settable 111000 "
                        + "\(hex(thresholds.nonRecoverable)) \(hex(thresholds.critical)) \(hex(thresholds.nonCritical)) 00 00 00")
                lines.append(
                    "sensor_set_event_support 0x20 0 \(number) enable scanning per-state "
                        + "000111111000000 000111111000000 000111111000000 000111111000000")
            }
        }
        lines.append("mc_enable 0x20")
        return lines.joined(separator: "\n") + "\n"
    }

    /// An SDR type 01 (full sensor record), IPMI 2.0 §43.1: linear conversion value = M × raw × 10^R.
    private static func fullSensorRecord(recordID: Int, number: Int, _ sensor: Sensor) -> [Int] {
        let name = Array(sensor.name.utf8).map(Int.init)
        var body = [0x20, 0x00, number]  // owner (BMC), LUN, sensor number
        body += [sensor.entity, 0x01, 0x67]  // entity, instance, initialization (scanning, events, thresholds)
        if sensor.isDiscrete {
            body += [0x40, sensor.type, 0x6f]  // capabilities, type, sensor-specific reading type
            body += [0x01, 0x00, 0x01, 0x00, 0x01, 0x00]  // assertion, deassertion, reading masks: bit 0 (presence)
            body += [0xc0, 0x00, 0x00]  // units: no analog reading
            body += Array(repeating: 0, count: 24)  // conversion, characteristics, thresholds, hysteresis, reserved, OEM
        } else {
            let (raw, thresholds) = sensor.raw
            body += [0x88, sensor.type, 0x01]  // capabilities (thresholds readable and settable), type, threshold reading
            body += [0xc0, 0x0f, 0xc0, 0x7f, 0x38, 0x38]  // event masks; upper thresholds readable and settable
            body += [0x00, sensor.unit, 0x00]  // unsigned, base unit, no modifier
            body += [0x00, sensor.multiplier, 0x00, 0x00, 0x00, 0x00, (sensor.exponent & 0x0f) << 4]  // linear, M, B=0, accuracy, R exp
            body += [0x03, raw, 0xff, 0x00, 0xff, 0x00]  // nominal and normal range given; nominal, max, min, sensor max, min
            body += [thresholds.nonRecoverable, thresholds.critical, thresholds.nonCritical, 0x00, 0x00, 0x00]
            body += [0x00, 0x00, 0x00, 0x00, 0x00]  // hysteresis, reserved, OEM
        }
        body += [0xc0 | name.count] + name  // 8-bit ASCII ID string
        return [recordID & 0xff, recordID >> 8, 0x51, 0x01, body.count] + body
    }

    private static func hex(_ value: Int) -> String { String(format: "0x%02x", value) }
}

extension IPMISimulator.Sensor {
    public var name: String {
        switch self {
        case .temperature(let name, _), .fan(let name, _), .voltage(let name, _), .powerSupply(let name, _): name
        }
    }

    var isDiscrete: Bool { if case .powerSupply = self { true } else { false } }
    /// IPMI sensor type: temperature 01, voltage 02, fan 04, power supply 08.
    var type: Int {
        switch self {
        case .temperature: 0x01
        case .voltage: 0x02
        case .fan: 0x04
        case .powerSupply: 0x08
        }
    }
    /// Entity: processor 03, system board 07, cooling 1d, power supply 0a.
    var entity: Int {
        switch self {
        case .temperature: 0x03
        case .voltage: 0x07
        case .fan: 0x1d
        case .powerSupply: 0x0a
        }
    }
    /// IPMI unit: degrees C 01, volts 04, RPM 18.
    var unit: Int {
        switch self {
        case .temperature: 1
        case .voltage: 4
        case .fan: 18
        case .powerSupply: 0
        }
    }
    var multiplier: Int {
        switch self {
        case .temperature, .powerSupply: 1
        case .voltage: 6
        case .fan: 100
        }
    }
    /// R (the power of ten), as a 4-bit two's-complement value.
    var exponent: Int { if case .voltage = self { -2 } else { 0 } }

    /// The raw reading and upper thresholds (non-critical at +20 %, critical +40 %, non-recoverable +60 %).
    var raw: (Int, (nonCritical: Int, critical: Int, nonRecoverable: Int)) {
        let raw =
            switch self {
            case .temperature(_, let celsius): celsius
            case .fan(_, let rpm): rpm / 100
            case .voltage(_, let centivolts): centivolts / 6
            case .powerSupply: 0
            }
        let limit = { (percent: Int) in min(0xfe, raw * (100 + percent) / 100) }
        return (raw, (limit(20), limit(40), limit(60)))
    }
}

/// A UDP port nothing on 127.0.0.1 uses right now (the kernel's choice for a socket bound to port 0).
public func freeUDPPort() throws -> Int {
    let socketFD = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard socketFD >= 0 else { throw AnvilServerError("socket: \(String(cString: strerror(errno)))") }
    defer { close(socketFD) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(socketFD, pointer, length) == 0 && getsockname(socketFD, pointer, &length) == 0
        }
    }
    guard bound else { throw AnvilServerError("bind: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}
