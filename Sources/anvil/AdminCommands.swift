import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ProvisioningModel

struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Server version, uptime and object counts.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            printObject(try await connection.client().request(.GET, "/api/v1/info").json, json: connection.json)
        }
    }
}

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print inventory events after a cursor; --follow keeps streaming new ones.")

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .long, help: "Start after this event cursor (default: from the start, or only new ones with --follow).")
    var after: Int64?
    @Flag(name: .long, help: "Keep the connection open and print events as they happen.") var follow = false
    @Option(name: .long, help: "With --follow, stop after this many events.") var count: Int?

    func run() async throws {
        try await reportingErrors {
            let client = try connection.client()
            if follow { return try await stream(client) }
            var cursor = after ?? 0
            while true {
                let page = try await client.request(.GET, "/api/v1/events?after=\(cursor)&limit=1000").json
                guard case .array(let events)? = page.objectValue?["events"], !events.isEmpty else { break }
                events.forEach(printEvent)
                guard case .integer(let next)? = page.objectValue?["nextCursor"], next > cursor else { break }
                cursor = next
            }
        }
    }

    /// Reads the server-sent event stream line by line; each `data:` line is one event.
    private func stream(_ client: APIClient) async throws {
        try await client.withHTTPClient { http in
            let path = "/api/v1/events/stream" + (after.map { "?after=\($0)" } ?? "")
            let response = try await http.execute(try client.makeRequest(.GET, path), timeout: .hours(24 * 365))
            guard response.status == .ok else {
                let body = try await response.body.collect(upTo: 1 << 20)
                throw APIClient.error(from: .init(status: Int(response.status.code), headers: response.headers, body: body))
            }
            var pending = ""
            var printed = 0
            for try await chunk in response.body {
                pending += String(buffer: chunk)
                while let newline = pending.firstIndex(of: "\n") {
                    let line = String(pending[..<newline])
                    pending = String(pending[pending.index(after: newline)...])
                    guard line.hasPrefix("data: ") else { continue }
                    printEvent((try? JSONDecoder().decode(JSONValue.self, from: Data(line.dropFirst(6).utf8))) ?? .null)
                    printed += 1
                    if let count, printed >= count { return }
                }
            }
        }
    }

    private func printEvent(_ event: JSONValue) {
        if connection.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: (try? encoder.encode(event)) ?? Data(), as: UTF8.self))
        } else {
            let fields = ["cursor", "time", "kind", "action", "key", "actor"].map { Table.cell(event.objectValue?[$0] ?? .null) }
            print(fields.joined(separator: "  "))
        }
        fflush(nil)
    }
}

struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens", abstract: "Manage admin API tokens (admin role).", subcommands: [List.self, Create.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors {
                let reply = try await connection.client().request(.GET, "/api/v1/tokens").json
                var items: [JSONValue] = []
                if case .array(let listed)? = reply.objectValue?["items"] { items = listed }
                if connection.json { return printJSON(.array(items)) }
                let columns: [(title: String, path: String)] = [("ID", "id"), ("NAME", "name"), ("ROLE", "role"), ("CREATED", "createdAt"), ("EXPIRES", "expiresAt")]
                print(Table(columns: columns, rows: items).render(), terminator: "")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; its secret is printed once.")
        @OptionGroup var connection: ConnectionOptions
        @Option(name: .long, help: "Token name.") var name: String
        @Option(name: .long, help: "admin, operator or viewer.") var role: String
        @Option(name: .long, help: "Lifetime in seconds (default: no expiry).") var expiresIn: Int?

        func run() async throws {
            try await reportingErrors {
                var body: [String: JSONValue] = ["name": .string(name), "role": .string(role)]
                if let expiresIn { body["expiresInSeconds"] = .integer(Int64(expiresIn)) }
                let reply = try await connection.client().request(.POST, "/api/v1/tokens", body: .object(body)).json
                if connection.json { return printJSON(reply) }
                print(reply.objectValue?["secret"]?.stringValue ?? "")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by id.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Token id.") var id: String

        func run() async throws {
            try await reportingErrors {
                _ = try await connection.client().request(.DELETE, "/api/v1/tokens/\(escape(id))")
                print("deleted token \(id)")
            }
        }
    }
}
