import CFreeIPMI
import Foundation
import ProvisioningModel

/// How long to wait for a BMC, and how hard to try.
public struct IPMITimeouts: Sendable, Hashable {
    /// The whole exchange (session set-up or one command) gives up after this.
    public var session: Duration
    /// Resend an unanswered packet after this: FreeIPMI's own default (1 s).
    public var retransmission: Duration

    public init(session: Duration = .seconds(10), retransmission: Duration = .seconds(1)) {
        self.session = session
        self.retransmission = retransmission
    }

    var sessionMilliseconds: UInt32 {
        UInt32(session.components.seconds * 1000 + session.components.attoseconds / 1_000_000_000_000_000)
    }
    var retransmissionMilliseconds: UInt32 {
        UInt32(retransmission.components.seconds * 1000 + retransmission.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// One open IPMI 2.0 (lanplus) session to one BMC: the only owner of its `ipmi_ctx_t`.
/// Not Sendable: it lives and dies on the BMC's own command thread (see `BMCCommandLane`).
final class IPMISession {
    private let context: ipmi_ctx_t
    private let bmc: String

    /// Opens the session at administrator privilege. Refuses cipher suites outside `BMCEndpoint.allowedCipherSuites`
    /// before a packet is sent.
    init(_ endpoint: BMCEndpoint, timeouts: IPMITimeouts) throws(PowerError) {
        bmc = endpoint.name
        guard BMCEndpoint.allowedCipherSuites.contains(endpoint.cipherSuite) else {
            throw PowerError(
                .refused, bmc: bmc, "cipher suite \(endpoint.cipherSuite) is not allowed (use 17, or 3 for older BMCs)")
        }
        let flags = try Self.workaroundFlags(endpoint.workarounds, bmc: bmc)
        guard let context = ipmi_ctx_create() else {
            throw PowerError(.failed, bmc: bmc, "out of memory creating an IPMI context")
        }
        self.context = context
        // FreeIPMI parses `host:port` itself.
        let opened = ipmi_ctx_open_outofband_2_0(
            context, endpoint.name, endpoint.username, endpoint.password, nil, 0, UInt8(IPMI_PRIVILEGE_LEVEL_ADMIN),
            endpoint.cipherSuite, timeouts.sessionMilliseconds, timeouts.retransmissionMilliseconds, flags,
            UInt32(IPMI_FLAGS_DEFAULT))
        if opened < 0 {
            let error = Self.error(from: context, bmc: bmc, opening: true)
            ipmi_ctx_destroy(context)
            throw error
        }
    }

    deinit {
        ipmi_ctx_close(context)
        ipmi_ctx_destroy(context)
    }

    func powerIsOn() throws(PowerError) -> Bool {
        try withResponse(anvil_fiid_get_chassis_status_rs(), "Get Chassis Status") { response throws(PowerError) in
            guard ipmi_cmd_get_chassis_status(context, response) >= 0 else {
                throw commandError(response, netFunction: IPMI_NET_FN_CHASSIS_RQ)
            }
            return try field(response, "current_power_state.power_is_on") == 1
        }
    }

    func chassisControl(_ command: Int32) throws(PowerError) {
        try withResponse(anvil_fiid_chassis_control_rs(), "Chassis Control") { response throws(PowerError) in
            guard ipmi_cmd_chassis_control(context, UInt8(command), response) >= 0 else {
                throw commandError(response, netFunction: IPMI_NET_FN_CHASSIS_RQ)
            }
        }
    }

    /// Turns the identify light on for `seconds` (IPMI's default is 15). Sent raw: ipmi_sim pads its
    /// reply with garbage that FreeIPMI's response template rejects (`ipmi-chassis --chassis-identify`
    /// times out against it too), and only the completion code matters.
    func identify(seconds: UInt8 = 15) throws(PowerError) {
        let request: [UInt8] = [UInt8(IPMI_CMD_CHASSIS_IDENTIFY), seconds]
        var response = [UInt8](repeating: 0, count: 64)
        let length = ipmi_cmd_raw(
            context, UInt8(IPMI_BMC_IPMB_LUN_BMC), UInt8(IPMI_NET_FN_CHASSIS_RQ), request, UInt32(request.count), &response,
            UInt32(response.count))
        guard length >= 0 else { throw Self.error(from: context, bmc: bmc, opening: false) }
        guard length >= 2 else { throw PowerError(.failed, bmc: bmc, "Chassis Identify: the reply has no completion code") }
        guard response[1] == 0 else {
            throw Self.completionCodeError(
                response[1], command: request[0], netFunction: IPMI_NET_FN_CHASSIS_RQ, bmc: bmc, "Chassis Identify")
        }
    }

    func setBootFlags(_ boot: BootOverride) throws(PowerError) {
        let device =
            switch boot.device {
            case .pxe: IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_FORCE_PXE
            case .disk: IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_DEVICE_FORCE_HARD_DRIVE
            }
        let type =
            boot.firmware == .uefi
            ? IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_TYPE_EFI : IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_BOOT_TYPE_PC_COMPATIBLE
        let persistent =
            boot.persistent
            ? IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_VALID_PERSISTENTLY : IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_VALID_FOR_NEXT_BOOT
        let disabled = UInt8(IPMI_SYSTEM_BOOT_OPTION_DISABLE)
        try withResponse(anvil_fiid_set_system_boot_options_rs(), "Set System Boot Options") { response throws(PowerError) in
            let result = ipmi_cmd_set_system_boot_options_boot_flags(
                context, UInt8(IPMI_SYSTEM_BOOT_OPTIONS_PARAMETER_VALID_UNLOCKED), UInt8(type), UInt8(persistent),
                UInt8(IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_VALID), disabled, disabled, UInt8(device), disabled, disabled,
                UInt8(IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_CONSOLE_REDIRECTION_DEFAULT), disabled, disabled, disabled,
                UInt8(IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAG_FIRMWARE_BIOS_VERBOSITY_DEFAULT), disabled,
                UInt8(IPMI_SYSTEM_BOOT_OPTION_BOOT_FLAGS_SET_MUX_TO_RECOMENDED_AT_END_OF_POST), disabled, 0, response)
            guard result >= 0 else { throw commandError(response, netFunction: IPMI_NET_FN_CHASSIS_RQ) }
        }
    }

    func deviceInfo() throws(PowerError) -> BMCInfo {
        try withResponse(anvil_fiid_get_device_id_rs(), "Get Device ID") { response throws(PowerError) in
            guard ipmi_cmd_get_device_id(context, response) >= 0 else {
                throw commandError(response, netFunction: IPMI_NET_FN_APP_RQ)
            }
            let major = try field(response, "firmware_revision1.major_revision")
            let minor = try field(response, "firmware_revision2.minor_revision")
            // The minor revision is BCD (0x08 → "08").
            return BMCInfo(
                deviceID: Int(try field(response, "device_id")),
                firmwareVersion: "\(major).\(String(minor, radix: 16).leftPadded(to: 2))",
                ipmiVersion: "\(try field(response, "ipmi_version_major")).\(try field(response, "ipmi_version_minor"))",
                manufacturerID: Int(try field(response, "manufacturer_id.id")),
                productID: Int(try field(response, "product_id")))
        }
    }

    // MARK: - Plumbing

    private func withResponse<T>(
        _ response: fiid_obj_t?, _ command: String, _ body: (fiid_obj_t) throws(PowerError) -> T
    ) throws(PowerError)
        -> T
    {
        guard let response else { throw PowerError(.failed, bmc: bmc, "out of memory for the \(command) response") }
        defer { fiid_obj_destroy(response) }
        return try body(response)
    }

    private func field(_ response: fiid_obj_t, _ name: String) throws(PowerError) -> UInt64 {
        var value: UInt64 = 0
        guard fiid_obj_get(response, name, &value) >= 0 else {
            throw PowerError(
                .failed, bmc: bmc, "malformed response: no field \(name): \(String(cString: fiid_obj_errormsg(response)))")
        }
        return value
    }

    private static func workaroundFlags(_ names: [String], bmc: String) throws(PowerError) -> UInt32 {
        var flags: UInt32 = 0
        for name in names {
            switch name {
            case "authcap": flags |= UInt32(IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_AUTHENTICATION_CAPABILITIES)
            case "intel20": flags |= UInt32(IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_INTEL_2_0_SESSION)
            case "supermicro20": flags |= UInt32(IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_SUPERMICRO_2_0_SESSION)
            case "sun20": flags |= UInt32(IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_SUN_2_0_SESSION)
            case "opensesspriv": flags |= UInt32(IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE)
            case "integritycheckvalue": flags |= UInt32(IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_NON_EMPTY_INTEGRITY_CHECK_VALUE)
            default: throw PowerError(.refused, bmc: bmc, "unknown workaround '\(name)'")
            }
        }
        return flags
    }

    /// A failed command's error; a completion code is looked up in its response and named.
    private func commandError(_ response: fiid_obj_t, netFunction: Int32) -> PowerError {
        var error = Self.error(from: context, bmc: bmc, opening: false)
        var completionCode: UInt64 = 0
        var command: UInt64 = 0
        if ipmi_ctx_errnum(context) == Int32(IPMI_ERR_BAD_COMPLETION_CODE.rawValue)
            || ipmi_ctx_errnum(context) == Int32(IPMI_ERR_BMC_BUSY.rawValue),
            fiid_obj_get(response, "comp_code", &completionCode) >= 0, fiid_obj_get(response, "cmd", &command) >= 0
        {
            let named = Self.completionCodeError(
                UInt8(truncatingIfNeeded: completionCode), command: UInt8(truncatingIfNeeded: command),
                netFunction: netFunction, bmc: bmc, error.reason)
            error.reason = named.reason
            error.transient = named.transient
        }
        return error
    }

    /// A non-zero completion code with FreeIPMI's description. Busy, timed out, out of resources and
    /// unspecified errors are transient: real BMCs answer them under load, and so does ipmi_sim when its
    /// chassis program fails to run.
    private static func completionCodeError(
        _ completionCode: UInt8, command: UInt8, netFunction: Int32, bmc: String, _ what: String
    ) -> PowerError {
        var text = [UInt8](repeating: 0, count: 256)
        let described =
            text.withUnsafeMutableBufferPointer { buffer in
                ipmi_completion_code_strerror_r(command, UInt8(netFunction), completionCode, buffer.baseAddress, buffer.count)
            } == 0 ? String(decoding: text.prefix { $0 != 0 }, as: UTF8.self) : "unknown"
        var error = PowerError(
            .failed, bmc: bmc, "\(what): completion code \(String(format: "0x%02X", completionCode)) (\(described))")
        error.transient = [0xC0, 0xC3, 0xC4, 0xCE, 0xFF].contains(completionCode)
        return error
    }

    /// FreeIPMI's error on `context`, sorted into what an admin can act on.
    private static func error(from context: ipmi_ctx_t, bmc: String, opening: Bool) -> PowerError {
        let number = ipmi_errnum_type_t(UInt32(ipmi_ctx_errnum(context)))
        let message = String(cString: ipmi_ctx_errormsg(context))
        let code: PowerError.Code =
            switch number {
            case IPMI_ERR_USERNAME_INVALID, IPMI_ERR_PASSWORD_INVALID, IPMI_ERR_K_G_INVALID,
                IPMI_ERR_PRIVILEGE_LEVEL_INSUFFICIENT,
                IPMI_ERR_PRIVILEGE_LEVEL_CANNOT_BE_OBTAINED, IPMI_ERR_PASSWORD_VERIFICATION_TIMEOUT:
                .authenticationFailed
            case IPMI_ERR_CONNECTION_TIMEOUT, IPMI_ERR_HOSTNAME_INVALID, IPMI_ERR_SYSTEM_ERROR: opening ? .unreachable : .failed
            case IPMI_ERR_SESSION_TIMEOUT, IPMI_ERR_MESSAGE_TIMEOUT: opening ? .unreachable : .timeout
            case IPMI_ERR_CIPHER_SUITE_ID_UNAVAILABLE, IPMI_ERR_AUTHENTICATION_TYPE_UNAVAILABLE, IPMI_ERR_IPMI_2_0_UNAVAILABLE,
                IPMI_ERR_COMMAND_INVALID_OR_UNSUPPORTED:
                .unsupported
            default: .failed
            }
        var error = PowerError(code, bmc: bmc, message)
        switch number {
        case IPMI_ERR_CONNECTION_TIMEOUT, IPMI_ERR_SESSION_TIMEOUT, IPMI_ERR_MESSAGE_TIMEOUT, IPMI_ERR_BMC_BUSY,
            IPMI_ERR_BAD_COMPLETION_CODE, IPMI_ERR_BAD_RMCPPLUS_STATUS_CODE:
            error.transient = true
        default: break
        }
        return error
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
