import CIPMIMonitoring
import Foundation
import ProvisioningModel

/// Reads a BMC's sensors through libipmimonitoring, which walks the SDR repository and interprets
/// each reading (thresholds → nominal/warning/critical). Like `IPMISession`, it runs only on the
/// BMC's own command thread.
enum SensorReader {
    /// libipmimonitoring must be initialised once per process before any context is used.
    private static let initialised: Int32 = {
        var errnum: Int32 = 0
        return ipmi_monitoring_init(0, &errnum)
    }()

    /// `cacheDirectory` holds FreeIPMI's SDR cache (one file per BMC); a stale cache (the BMC's SDRs
    /// changed) is re-read once.
    static func read(
        _ endpoint: BMCEndpoint, timeouts: IPMITimeouts, cacheDirectory: String
    ) throws(PowerError) -> [SensorReading] {
        guard BMCEndpoint.allowedCipherSuites.contains(endpoint.cipherSuite) else {
            throw PowerError(
                .refused, bmc: endpoint.name, "cipher suite \(endpoint.cipherSuite) is not allowed (use 17, or 3 for older BMCs)")
        }
        guard initialised == 0 else { throw PowerError(.failed, bmc: endpoint.name, "libipmimonitoring failed to initialise") }
        do {
            return try readOnce(endpoint, timeouts: timeouts, cacheDirectory: cacheDirectory, rereadCache: false)
        } catch let error where error.code == .failed {
            return try readOnce(endpoint, timeouts: timeouts, cacheDirectory: cacheDirectory, rereadCache: true)
        }
    }

    private static func readOnce(
        _ endpoint: BMCEndpoint, timeouts: IPMITimeouts, cacheDirectory: String, rereadCache: Bool
    )
        throws(PowerError) -> [SensorReading]
    {
        guard let context = ipmi_monitoring_ctx_create() else { throw PowerError(.failed, bmc: endpoint.name, "out of memory") }
        defer { ipmi_monitoring_ctx_destroy(context) }
        try? FileManager.default.createDirectory(
            atPath: cacheDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard ipmi_monitoring_ctx_sdr_cache_directory(context, cacheDirectory) == 0 else {
            throw PowerError(
                .failed, bmc: endpoint.name,
                "SDR cache \(cacheDirectory): \(String(cString: ipmi_monitoring_ctx_errormsg(context)))")
        }
        var flags =
            IPMI_MONITORING_SENSOR_READING_FLAGS_IGNORE_NON_INTERPRETABLE_SENSORS.rawValue
            | IPMI_MONITORING_SENSOR_READING_FLAGS_DISCRETE_READING.rawValue
        if rereadCache { flags |= IPMI_MONITORING_SENSOR_READING_FLAGS_REREAD_SDR_CACHE.rawValue }

        let count = endpoint.username.withCString { username in
            endpoint.password.withCString { password in
                var config = ipmi_monitoring_ipmi_config()
                config.driver_type = -1
                config.protocol_version = Int32(IPMI_MONITORING_PROTOCOL_VERSION_2_0.rawValue)
                config.username = UnsafeMutablePointer(mutating: username)
                config.password = UnsafeMutablePointer(mutating: password)
                config.privilege_level = Int32(IPMI_MONITORING_PRIVILEGE_LEVEL_ADMIN.rawValue)
                config.authentication_type = -1
                config.cipher_suite_id = Int32(endpoint.cipherSuite)
                config.session_timeout_len = Int32(timeouts.sessionMilliseconds)
                config.retransmission_timeout_len = Int32(timeouts.retransmissionMilliseconds)
                config.workaround_flags =
                    endpoint.workarounds.contains("opensesspriv")
                    ? UInt32(IPMI_MONITORING_WORKAROUND_FLAGS_PROTOCOL_VERSION_2_0_OPEN_SESSION_PRIVILEGE.rawValue) : 0
                return ipmi_monitoring_sensor_readings_by_record_id(context, endpoint.name, &config, flags, nil, 0, nil, nil)
            }
        }
        guard count >= 0 else { throw error(from: context, bmc: endpoint.name) }

        var readings: [SensorReading] = []
        guard count > 0 else { return readings }
        ipmi_monitoring_sensor_iterator_first(context)
        for _ in 0..<count {
            readings.append(reading(at: context))
            if ipmi_monitoring_sensor_iterator_next(context) == 0 { break }
        }
        return readings
    }

    private static func reading(at context: ipmi_monitoring_ctx_t) -> SensorReading {
        let kind: SensorReading.Kind =
            switch UInt32(ipmi_monitoring_sensor_read_sensor_type(context)) {
            case IPMI_MONITORING_SENSOR_TYPE_TEMPERATURE.rawValue: .temperature
            case IPMI_MONITORING_SENSOR_TYPE_VOLTAGE.rawValue: .voltage
            case IPMI_MONITORING_SENSOR_TYPE_FAN.rawValue: .fan
            case IPMI_MONITORING_SENSOR_TYPE_POWER_SUPPLY.rawValue: .powerSupply
            default: .other
            }
        let state: SensorReading.State =
            switch UInt32(ipmi_monitoring_sensor_read_sensor_state(context)) {
            case IPMI_MONITORING_STATE_NOMINAL.rawValue: .nominal
            case IPMI_MONITORING_STATE_WARNING.rawValue: .warning
            case IPMI_MONITORING_STATE_CRITICAL.rawValue: .critical
            default: .unknown
            }
        let unit: String? =
            switch UInt32(ipmi_monitoring_sensor_read_sensor_units(context)) {
            case IPMI_MONITORING_SENSOR_UNITS_CELSIUS.rawValue: "C"
            case IPMI_MONITORING_SENSOR_UNITS_FAHRENHEIT.rawValue: "F"
            case IPMI_MONITORING_SENSOR_UNITS_VOLTS.rawValue: "V"
            case IPMI_MONITORING_SENSOR_UNITS_AMPS.rawValue: "A"
            case IPMI_MONITORING_SENSOR_UNITS_RPM.rawValue: "RPM"
            case IPMI_MONITORING_SENSOR_UNITS_WATTS.rawValue: "W"
            case IPMI_MONITORING_SENSOR_UNITS_PERCENT.rawValue: "%"
            default: nil
            }
        var value: Double?
        if let raw = ipmi_monitoring_sensor_read_sensor_reading(context) {
            switch UInt32(ipmi_monitoring_sensor_read_sensor_reading_type(context)) {
            case IPMI_MONITORING_SENSOR_READING_TYPE_DOUBLE.rawValue: value = raw.load(as: Double.self)
            case IPMI_MONITORING_SENSOR_READING_TYPE_UNSIGNED_INTEGER32.rawValue: value = Double(raw.load(as: UInt32.self))
            case IPMI_MONITORING_SENSOR_READING_TYPE_UNSIGNED_INTEGER8_BOOL.rawValue: value = Double(raw.load(as: UInt8.self))
            default: value = nil
            }
        }
        var events: [String] = []
        if var strings = ipmi_monitoring_sensor_read_sensor_bitmask_strings(context) {
            while let string = strings.pointee {
                events.append(String(cString: string))
                strings += 1
            }
        }
        // Discrete sensors (a power supply) report a bitmask, not a measurement.
        if unit == nil && !events.isEmpty { value = nil }
        return SensorReading(
            recordID: Int(ipmi_monitoring_sensor_read_record_id(context)),
            name: ipmi_monitoring_sensor_read_sensor_name(context).map { String(cString: $0) } ?? "",
            kind: kind, state: state, value: value, unit: unit, events: events)
    }

    private static func error(from context: ipmi_monitoring_ctx_t, bmc: String) -> PowerError {
        let message = String(cString: ipmi_monitoring_ctx_errormsg(context))
        let code: PowerError.Code =
            switch UInt32(ipmi_monitoring_ctx_errnum(context)) {
            case IPMI_MONITORING_ERR_USERNAME_INVALID.rawValue, IPMI_MONITORING_ERR_PASSWORD_INVALID.rawValue,
                IPMI_MONITORING_ERR_K_G_INVALID.rawValue, IPMI_MONITORING_ERR_PRIVILEGE_LEVEL_INSUFFICIENT.rawValue,
                IPMI_MONITORING_ERR_PRIVILEGEL_LEVEL_CANNOT_BE_OBTAINED.rawValue:
                .authenticationFailed
            case IPMI_MONITORING_ERR_CONNECTION_TIMEOUT.rawValue, IPMI_MONITORING_ERR_HOSTNAME_INVALID.rawValue: .unreachable
            case IPMI_MONITORING_ERR_SESSION_TIMEOUT.rawValue: .timeout
            case IPMI_MONITORING_ERR_CIPHER_SUITE_ID_UNAVAILABLE.rawValue, IPMI_MONITORING_ERR_IPMI_2_0_UNAVAILABLE.rawValue,
                IPMI_MONITORING_ERR_AUTHENTICATION_TYPE_UNAVAILABLE.rawValue:
                .unsupported
            default: .failed
            }
        let transient =
            switch UInt32(ipmi_monitoring_ctx_errnum(context)) {
            case IPMI_MONITORING_ERR_CONNECTION_TIMEOUT.rawValue, IPMI_MONITORING_ERR_SESSION_TIMEOUT.rawValue,
                IPMI_MONITORING_ERR_BMC_BUSY.rawValue, IPMI_MONITORING_ERR_IPMI_ERROR.rawValue:
                true
            default: false
            }
        return PowerError(code, bmc: bmc, message, transient: transient)
    }
}
