import ArgumentParser
import Foundation
import NIOHTTP1
import ProvisioningModel
import Yams

/// What the CLI needs to know about a kind: its API collection and its table columns (JSON paths).
protocol CLIKind {
    static var kind: ObjectKind { get }
    static var columns: [(title: String, path: String)] { get }
    static var extraCommands: [any ParsableCommand.Type] { get }
}

extension CLIKind {
    static var extraCommands: [any ParsableCommand.Type] { [] }
}

enum MachinesKind: CLIKind {
    static let kind = ObjectKind.machine
    static let columns: [(title: String, path: String)] = [("ID", "id"), ("NAME", "name"), ("STATE", "state"), ("ARCH", "architecture"), ("BOOTENV", "bootEnv"), ("MACS", "interfaces[].mac")]
    static var extraCommands: [any ParsableCommand.Type] {
        [BootDecisionsCommand.self, MachineHistoryCommand.self, MachineBMCCommand.self, MachineSensorsCommand.self]
    }
}
enum SubnetsKind: CLIKind {
    static let kind = ObjectKind.subnet
    static let columns: [(title: String, path: String)] = [("NAME", "name"), ("MODE", "mode"), ("NETWORK", "network"), ("START", "rangeStart"), ("END", "rangeEnd"), ("ROUTER", "router")]
}
enum ReservationsKind: CLIKind {
    static let kind = ObjectKind.reservation
    static let columns: [(title: String, path: String)] = [("MAC", "mac"), ("ADDRESS", "address"), ("SUBNET", "subnet"), ("HOSTNAME", "hostname")]
}
enum BootEnvsKind: CLIKind {
    static let kind = ObjectKind.bootenv
    static let columns: [(title: String, path: String)] = [("NAME", "name"), ("OS", "os.family"), ("VERSION", "os.version"), ("ORIGIN", "meta.origin"), ("DESCRIPTION", "description")]
    static var extraCommands: [any ParsableCommand.Type] { [BootEnvsCheckCommand.self, BootEnvsImportCommand.self] }
}
enum ParamsKind: CLIKind {
    static let kind = ObjectKind.param
    static let columns: [(title: String, path: String)] = [("NAME", "name"), ("TYPE", "schema.type"), ("DEFAULT", "default"), ("ORIGIN", "meta.origin"), ("DESCRIPTION", "description")]
    static var extraCommands: [any ParsableCommand.Type] { [ResolveParamCommand.self] }
}
enum ProfilesKind: CLIKind {
    static let kind = ObjectKind.profile
    static let columns: [(title: String, path: String)] = [("NAME", "name"), ("ORIGIN", "meta.origin"), ("DESCRIPTION", "description")]
}
enum TasksKind: CLIKind {
    static let kind = ObjectKind.task
    static let columns: [(title: String, path: String)] = [("NAME", "name"), ("TEMPLATES", "templates[].name"), ("ORIGIN", "meta.origin"), ("DESCRIPTION", "description")]
}
enum StagesKind: CLIKind {
    static let kind = ObjectKind.stage
    static let columns: [(title: String, path: String)] = [("NAME", "name"), ("BOOTENV", "bootEnv"), ("TASKS", "tasks[]"), ("ORIGIN", "meta.origin")]
}
enum WorkflowsKind: CLIKind {
    static let kind = ObjectKind.workflow
    static let columns: [(title: String, path: String)] = [("NAME", "name"), ("STAGES", "stages[]"), ("ORIGIN", "meta.origin"), ("DESCRIPTION", "description")]
}
enum JobsKind: CLIKind {
    static let kind = ObjectKind.job
    static let columns: [(title: String, path: String)] = [("ID", "id"), ("MACHINE", "machine"), ("TASK", "task"), ("STATE", "state"), ("EXIT", "exitState"), ("CREATED", "createdAt")]
}
enum LeasesKind: CLIKind {
    static let kind = ObjectKind.lease
    static let columns: [(title: String, path: String)] = [("ADDRESS", "address"), ("MAC", "mac"), ("SUBNET", "subnet"), ("STATE", "state"), ("EXPIRES", "expiresAt")]
}

struct ObjectCommand<K: CLIKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        let read: [any ParsableCommand.Type] = [ListObjects<K>.self, ShowObject<K>.self]
        let write: [any ParsableCommand.Type] = [CreateObject<K>.self, UpdateObject<K>.self, DeleteObject<K>.self]
        return CommandConfiguration(
            commandName: K.kind.collection,
            abstract: "\(K.kind.isUserWritable ? "Manage" : "Inspect") \(K.kind.collection).",
            subcommands: read + (K.kind.isUserWritable ? write : []) + K.extraCommands)
    }
}

struct ListObjects<K: CLIKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: "list", abstract: "List \(K.kind.collection).") }

    @OptionGroup var connection: ConnectionOptions

    @Option(
        name: .long,
        help: "field<op>value with op = != < <= > >=, e.g. state=ready, mac=52:54:00:00:00:01, 'memory>=64GiB', 'disk.count>=2' (repeatable).")
    var filter: [String] = []

    @Option(name: .long, help: "Show at most this many (default: all, fetched page by page).")
    var limit: Int?

    func run() async throws {
        try await reportingErrors {
            let client = try connection.client()
            var query = try filter.map { item -> String in
                guard ListFilter(expression: item) != nil else {
                    throw ValidationError("--filter takes field<op>value (op one of = != < <= > >=), got '\(item)'")
                }
                return "filter=\(escape(item))"
            }
            var items: [JSONValue] = []
            var cursor: String?
            repeat {
                let pageSize = min(1000, limit.map { $0 - items.count } ?? 1000)
                query.removeAll { $0.hasPrefix("cursor=") || $0.hasPrefix("limit=") }
                query.append("limit=\(pageSize)")
                if let cursor { query.append("cursor=\(escape(cursor))") }
                let page = try await client.request(.GET, "/api/v1/\(K.kind.collection)?" + query.joined(separator: "&")).json
                if case .array(let pageItems)? = page.objectValue?["items"] { items += pageItems }
                cursor = page.objectValue?["nextCursor"]?.stringValue
            } while cursor != nil && items.count < (limit ?? .max)
            if connection.json {
                printJSON(.array(items))
            } else {
                print(Table(columns: K.columns, rows: items).render(), terminator: "")
            }
        }
    }
}

struct ShowObject<K: CLIKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: "show", abstract: "Show one \(K.kind.rawValue).") }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The \(K.kind.rawValue)'s \(K.kind.keyField)\(K.kind == .machine ? " or name" : "").") var key: String

    func run() async throws {
        try await reportingErrors {
            let client = try connection.client()
            let reply = try await client.request(.GET, "/api/v1/\(K.kind.collection)/\(escape(key))")
            printObject(reply.json, json: connection.json)
            // People also see why the machine booted what it booted; scripts ask `boot-decisions --json`.
            if K.kind == .machine, !connection.json {
                let decisions = try await client.request(.GET, "/api/v1/machines/\(escape(key))/boot-decisions").json
                print("\nboot decisions (latest first):")
                print(BootDecisionsCommand.table(decisions, limit: 5), terminator: "")
            }
        }
    }
}

struct CreateObject<K: CLIKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "create", abstract: "Create a \(K.kind.rawValue) from a YAML/JSON file and/or --set values.")
    }

    @OptionGroup var connection: ConnectionOptions
    @Option(name: [.short, .long], help: "YAML or JSON file with the object ('-' for standard input).") var file: String?
    @Option(name: .long, help: "path=value (value parsed as JSON when it is JSON), e.g. name=node1 or interfaces=[{\"mac\":\"52:54:00:00:00:01\"}].")
    var set: [String] = []

    func run() async throws {
        try await reportingErrors {
            let body = try ObjectInput.build(file: file, assignments: set)
            let reply = try await connection.client().request(.POST, "/api/v1/\(K.kind.collection)", body: body)
            printObject(reply.json, json: connection.json)
        }
    }
}

struct UpdateObject<K: CLIKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "update", abstract: "Change a \(K.kind.rawValue): --set merges fields (PATCH); --file replaces it whole (PUT).")
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The \(K.kind.rawValue) to change.") var key: String
    @Option(name: [.short, .long], help: "Replace with this YAML or JSON file ('-' for standard input).") var file: String?
    @Option(name: .long, help: "path=value to change (value parsed as JSON when it is JSON); path=null removes.") var set: [String] = []
    @Option(name: .long, help: "Only if the stored revision is still this one (optimistic concurrency).") var ifRevision: Int?

    func run() async throws {
        try await reportingErrors {
            guard (file == nil) != set.isEmpty else { throw ValidationError("give either --file (replace) or --set (merge), not both or neither") }
            let headers = ifRevision.map { [("If-Match", "\"\($0)\"")] } ?? []
            let path = "/api/v1/\(K.kind.collection)/\(escape(key))"
            let client = try connection.client()
            let reply =
                file != nil
                ? try await client.request(.PUT, path, body: try ObjectInput.build(file: file, assignments: []), headers: headers)
                : try await client.request(.PATCH, path, body: try ObjectInput.build(file: nil, assignments: set), headers: headers)
            printObject(reply.json, json: connection.json)
        }
    }
}

struct DeleteObject<K: CLIKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: "delete", abstract: "Delete a \(K.kind.rawValue).") }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The \(K.kind.rawValue) to delete.") var key: String
    @Option(name: .long, help: "Only if the stored revision is still this one.") var ifRevision: Int?

    func run() async throws {
        try await reportingErrors {
            let headers = ifRevision.map { [("If-Match", "\"\($0)\"")] } ?? []
            _ = try await connection.client().request(.DELETE, "/api/v1/\(K.kind.collection)/\(escape(key))", headers: headers)
            if !connection.json { print("deleted \(K.kind.rawValue) \(key)") }
        }
    }
}

struct ResolveParamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve", abstract: "Show a param's value for a machine and which layer of the attribute chain it came from.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Param name.") var name: String
    @Option(name: .long, help: "Machine id or name.") var machine: String
    @Option(name: .long, help: "Apply this stage's profile too.") var stage: String?

    func run() async throws {
        try await reportingErrors {
            var path = "/api/v1/params/\(escape(name))/resolve?machine=\(escape(machine))"
            if let stage { path += "&stage=\(escape(stage))" }
            let answer = try await connection.client().request(.GET, path).json
            if connection.json { return printJSON(answer) }
            let source = answer.objectValue?["source"]?.objectValue
            let layer = source?["layer"]?.stringValue ?? "?"
            let from = source?["name"]?.stringValue.map { "\(layer) \($0)" } ?? layer
            print("\(name) = \(Table.cell(answer.objectValue?["value"] ?? .null))    (from \(from))")
        }
    }
}

struct BootDecisionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot-decisions", abstract: "What the DHCP server told the machine's MACs at boot, and why (latest first).")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Machine id or name.") var machine: String

    func run() async throws {
        try await reportingErrors {
            let answer = try await connection.client().request(.GET, "/api/v1/machines/\(escape(machine))/boot-decisions").json
            if connection.json { return printJSON(answer) }
            print(Self.table(answer, limit: nil), terminator: "")
        }
    }

    static func table(_ answer: JSONValue, limit: Int?) -> String {
        guard case .array(let all)? = answer.objectValue?["decisions"], !all.isEmpty else { return "  none since the server started\n" }
        let rows = limit.map { Array(all.prefix($0)) } ?? all
        return Table(
            columns: [("TIME", "time"), ("MAC", "mac"), ("MESSAGE", "message"), ("VIA", "via"), ("ARCH", "architecture"),
                ("ANSWER", "answer"), ("ADDRESS", "address"), ("WHY", "reason")],
            rows: rows
        ).render()
    }
}

struct MachineHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "The machine's history: discovered, changes, hardware changes (with what changed), conflicts, files served, installs finished, task results.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Machine id or name.") var machine: String
    @Option(help: "Only this kind of entry, e.g. factsChanged, discovered, identityConflict, fileServed, renderFailed, installed, taskFinished.") var action: String?

    func run() async throws {
        try await reportingErrors {
            let query = action.map { "?action=\(escape($0))" } ?? ""
            let answer = try await connection.client().request(.GET, "/api/v1/machines/\(escape(machine))/history\(query)").json
            if connection.json { return printJSON(answer) }
            guard case .array(let items)? = answer.objectValue?["items"] else { return }
            for item in items {
                let fields = item.objectValue ?? [:]
                let head = [fields["time"], fields["action"], fields["actor"], fields["state"]].compactMap { $0?.stringValue }
                print(head.joined(separator: "  "))
                // Fact changes print one per line; other details as compact JSON.
                if case .array(let changes)? = fields["detail"]?.objectValue?["changes"] {
                    for change in changes { print("    " + (change.objectValue?["summary"]?.stringValue ?? "")) }
                } else if let message = fields["detail"]?.objectValue?["message"]?.stringValue {
                    print("    " + message)
                } else if let served = fields["detail"]?.objectValue, let path = served["path"]?.stringValue {
                    print("    \(path)  (boot environment \(served["bootenv"]?.stringValue ?? "?"), template \(served["template"]?.stringValue ?? "?"))")
                } else if let detail = fields["detail"], detail != .null {
                    print("    " + Table.cell(detail))
                }
            }
        }
    }
}

/// Builds a request body from a file and `path=value` assignments.
enum ObjectInput {
    static func build(file: String?, assignments: [String]) throws -> JSONValue {
        var object: JSONValue = .object([:])
        if let file {
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                do { text = try String(contentsOfFile: file, encoding: .utf8) } catch { throw ValidationError("cannot read \(file): \(error.localizedDescription)") }
            }
            do {
                object = try YAMLDecoder().decode(JSONValue.self, from: text)  // JSON is YAML too
            } catch {
                throw ValidationError("\(file) is not valid YAML or JSON: \(error)")
            }
        }
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                throw ValidationError("--set takes path=value, got '\(assignment)'")
            }
            let path = assignment[..<equals].split(separator: ".").map(String.init)
            let text = String(assignment[assignment.index(after: equals)...])
            let value = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .string(text)
            object = set(value, at: path[...], in: object)
        }
        return object
    }

    private static func set(_ value: JSONValue, at path: ArraySlice<String>, in object: JSONValue) -> JSONValue {
        guard let first = path.first else { return value }
        var members = object.objectValue ?? [:]
        members[first] = set(value, at: path.dropFirst(), in: members[first] ?? .object([:]))
        return .object(members)
    }
}

func escape(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~:"))) ?? text
}

func printJSON(_ value: JSONValue) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self))
}

/// One object: YAML for people (readable, diffable, and what `create -f` takes), JSON for scripts.
func printObject(_ value: JSONValue, json: Bool) {
    if json { return printJSON(value) }
    let encoder = YAMLEncoder()
    encoder.options.sortKeys = true
    print((try? encoder.encode(value)) ?? "", terminator: "")
}
