import ArgumentParser
import Foundation
import NIOHTTP1
import ProvisioningModel

/// `anvil power on|off|soft-off|cycle|reset|status|identify <machine…>` and `anvil power pxe <machine…>`.
struct PowerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "power",
        abstract: "Power machines through their BMCs (recorded, one result per machine).",
        discussion: "Exits 1 when any machine's command failed. Machines without a BMC get an operator event instead.",
        subcommands: [
            Action<On>.self, Action<Off>.self, Action<SoftOff>.self, Action<Cycle>.self, Action<Reset>.self, Action<Status>.self,
            Action<Identify>.self, PXE.self,
        ])

    protocol Name { static var action: PowerAction { get } }
    enum On: Name { static let action = PowerAction.on }
    enum Off: Name { static let action = PowerAction.off }
    enum SoftOff: Name { static let action = PowerAction.softOff }
    enum Cycle: Name { static let action = PowerAction.cycle }
    enum Reset: Name { static let action = PowerAction.reset }
    enum Status: Name { static let action = PowerAction.status }
    enum Identify: Name { static let action = PowerAction.identify }

    struct Action<N: Name>: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(commandName: N.action.rawValue, abstract: "Power \(N.action.rawValue) the machines.")
        }
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Machine ids or names.") var machines: [String]

        func run() async throws {
            try await PowerCommand.send(["action": .string(N.action.rawValue)], machines: machines, connection: connection)
        }
    }

    struct PXE: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pxe", abstract: "Boot from the network next time (then --cycle or --on to boot now).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Machine ids or names.") var machines: [String]
        @Flag(help: "UEFI network boot instead of legacy BIOS.") var uefi = false
        @Flag(help: "Every boot, not only the next one.") var persistent = false
        @Flag(help: "Power-cycle the machines afterwards.") var cycle = false

        func run() async throws {
            let boot: JSONValue = .object([
                "device": "pxe", "firmware": .string(uefi ? "uefi" : "bios"), "persistent": .bool(persistent),
            ])
            try await PowerCommand.send(["action": "boot", "boot": boot], machines: machines, connection: connection)
            if cycle { try await PowerCommand.send(["action": "cycle"], machines: machines, connection: connection) }
        }
    }

    static func send(_ request: [String: JSONValue], machines: [String], connection: ConnectionOptions) async throws {
        var failed = false
        try await reportingErrors {
            var body = request
            body["machines"] = .array(machines.map(JSONValue.string))
            let answer = try await connection.client().request(.POST, "/api/v1/power", body: .object(body)).json
            guard case .array(let results)? = answer.objectValue?["results"] else { return }
            failed = results.contains { $0.objectValue?["outcome"]?.stringValue != "success" }
            if connection.json { return printJSON(answer) }
            let columns: [(title: String, path: String)] = [
                ("MACHINE", "name"), ("ACTION", "action"), ("OUTCOME", "outcome"), ("STATE", "state"), ("MS", "milliseconds"),
                ("MESSAGE", "message"),
            ]
            print(Table(columns: columns, rows: results).render(), terminator: "")
        }
        if failed { throw ExitCode(1) }
    }
}

/// `anvil machines sensors <machine>`: reads the BMC now (or `--cached` for the last poll).
struct MachineSensorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensors", abstract: "The machine's BMC sensors: temperatures, fans, voltages, power supplies.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Machine id or name.") var machine: String
    @Flag(help: "Show the last stored readings instead of asking the BMC.") var cached = false

    func run() async throws {
        try await reportingErrors {
            let query = cached ? "" : "?refresh=true"
            let answer = try await connection.client().request(.GET, "/api/v1/machines/\(escape(machine))/sensors\(query)").json
            if connection.json { return printJSON(answer) }
            guard case .array(let readings)? = answer.objectValue?["readings"] else { return }
            let columns: [(title: String, path: String)] = [
                ("NAME", "name"), ("KIND", "kind"), ("VALUE", "value"), ("UNIT", "unit"), ("STATE", "state"),
                ("EVENTS", "events[]"),
            ]
            print("read at \(answer.objectValue?["readAt"]?.stringValue ?? "?")")
            print(Table(columns: columns, rows: readings).render(), terminator: "")
        }
    }
}

/// `anvil machines bmc set|show|remove <machine>`. The password is read from a file or stdin, never a flag.
struct MachineBMCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bmc", abstract: "The machine's BMC (IPMI address and credentials).",
        subcommands: [Set.self, Show.self, Info.self, Remove.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach a BMC. The password comes from --password-file or stdin, so it never shows in ps or shell history.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Machine id or name.") var machine: String
        @Option(help: "BMC address.") var address: String
        @OptionGroup var login: BMCLoginOptions

        func run() async throws {
            try await reportingErrors {
                let body = try login.body(["address": .string(address)])
                let answer = try await connection.client().request(.PUT, "/api/v1/machines/\(escape(machine))/bmc", body: body)
                    .json
                printJSON(answer)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the machine's BMC (never the password).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Machine id or name.") var machine: String

        func run() async throws {
            try await reportingErrors {
                printJSON(try await connection.client().request(.GET, "/api/v1/machines/\(escape(machine))/bmc").json)
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask the BMC for its device ID, firmware and manufacturer.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Machine id or name.") var machine: String

        func run() async throws {
            try await reportingErrors {
                printJSON(try await connection.client().request(.GET, "/api/v1/machines/\(escape(machine))/bmc/info").json)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget the machine's BMC.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Machine id or name.") var machine: String

        func run() async throws {
            try await reportingErrors {
                _ = try await connection.client().request(.DELETE, "/api/v1/machines/\(escape(machine))/bmc")
            }
        }
    }
}

/// How to log in to a BMC: shared by `machines bmc set` and `bmc-credentials set`.
struct BMCLoginOptions: ParsableArguments {
    @Option(help: "BMC UDP port.") var port = 623
    @Option(help: "BMC user.") var username: String
    @Option(help: "File holding the password (first line); '-' or absent reads stdin.") var passwordFile: String?
    @Option(help: "IPMI cipher suite: 17, or 3 for BMCs without 17.") var cipherSuite = 17
    @Option(help: "FreeIPMI workaround for a BMC quirk (repeatable), e.g. opensesspriv.") var workaround: [String] = []

    /// The request body: these fields, the password read now, and `extra`.
    func body(_ extra: [String: JSONValue]) throws -> JSONValue {
        .object(
            extra.merging([
                "port": .integer(Int64(port)), "username": .string(username),
                "password": .string(try readPassword(from: passwordFile)),
                "cipherSuite": .integer(Int64(cipherSuite)), "workarounds": .array(workaround.map(JSONValue.string)),
            ]) { $1 })
    }
}

/// The first line of `file`, or of stdin when it is absent or `-`: passwords never come from flags.
func readPassword(from file: String?) throws -> String {
    let text: String?
    if let file, file != "-" {
        text = try String(contentsOfFile: file, encoding: .utf8)
    } else {
        text = readLine(strippingNewline: true)
    }
    guard let password = text?.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init), !password.isEmpty
    else { throw ValidationError("no password: give --password-file or pipe it on stdin") }
    return password
}

/// `anvil bmc-credentials set|list|remove`: credentials for every BMC in a network, attached to
/// machines whose agent reports a BMC address inside it.
struct BMCCredentialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bmc-credentials", abstract: "Credential sets attached automatically to BMCs discovered in their network.",
        subcommands: [Set.self, List.self, Remove.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or replace a credential set; the password comes from --password-file or stdin.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Name of the set.") var name: String
        @Option(help: "The BMC network, e.g. 10.0.9.0/24.") var network: String
        @OptionGroup var login: BMCLoginOptions

        func run() async throws {
            try await reportingErrors {
                let body = try login.body(["network": .string(network)])
                printJSON(
                    try await connection.client().request(.PUT, "/api/v1/bmc-credential-sets/\(escape(name))", body: body).json)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List credential sets (never their passwords).")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors {
                let answer = try await connection.client().request(.GET, "/api/v1/bmc-credential-sets").json
                if connection.json { return printJSON(answer) }
                let columns: [(title: String, path: String)] = [
                    ("NAME", "name"), ("NETWORK", "network"), ("PORT", "port"), ("USER", "username"), ("CIPHER", "cipherSuite"),
                    ("WORKAROUNDS", "workarounds[]"),
                ]
                print(Table(columns: columns, rows: answer.objectValue?["items"]?.arrayValue ?? []).render(), terminator: "")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a credential set (BMCs already attached keep theirs).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Name of the set.") var name: String

        func run() async throws {
            try await reportingErrors {
                _ = try await connection.client().request(.DELETE, "/api/v1/bmc-credential-sets/\(escape(name))")
            }
        }
    }
}
