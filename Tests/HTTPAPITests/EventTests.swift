import ApplianceTesting
import AsyncHTTPClient
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import ProvisioningModel
import SQLiteInventory
import Testing

@Suite("Event log and event stream")
struct EventTests {
    @Test("writes appear in the event log in cursor order, with action and actor")
    func eventLog() async throws {
        try await APITestHarness.withAPI(seed: false) { api in
            #expect(try await api.get("/api/v1/events?after=0").json == ["events": [], "nextCursor": 0])

            try await api.create("bootenvs", ["name": "be1"])
            #expect(try await api.patch("/api/v1/bootenvs/be1", ["description": "changed"]).status == .ok)
            #expect(try await api.delete("/api/v1/bootenvs/be1", as: .admin).status == .noContent)

            let log = try await api.get("/api/v1/events?after=0")
            #expect(log.status == .ok, "\(log)")
            let events = log.json?["events"]?.arrayValue ?? []
            #expect(events.map { $0["action"] } == ["created", "updated", "deleted"])
            #expect(events.map { $0["kind"] } == ["bootenv", "bootenv", "bootenv"])
            #expect(events.map { $0["key"] } == ["be1", "be1", "be1"])
            #expect(events.map { $0["actor"] } == ["token:operator", "token:operator", "token:admin"])
            let cursors = events.compactMap { $0["cursor"]?.intValue }
            #expect(cursors.count == 3)
            #expect(cursors == cursors.sorted() && Set(cursors).count == cursors.count)
            #expect(events[0]["object"]?["name"] == "be1")
            #expect(events[1]["object"]?["description"] == "changed")
            #expect(events[2]["object"] == nil)
            #expect(events.allSatisfy { $0["time"]?.stringValue != nil })
            let last = try #require(cursors.last)
            #expect(log.json?["nextCursor"] == .integer(last))

            let none = try await api.get("/api/v1/events?after=\(last)")
            #expect(none.status == .ok)
            #expect(none.json == ["events": [], "nextCursor": .integer(last)])

            let tail = try await api.get("/api/v1/events?after=\(cursors[0])")
            #expect(tail.json?["events"]?.arrayValue?.compactMap { $0["cursor"]?.intValue } == Array(cursors.dropFirst()))
        }
    }

    @Test("the event log pages with limit and nextCursor")
    func eventPaging() async throws {
        try await APITestHarness.withAPI { api in
            let all = try await api.get("/api/v1/events?after=0&limit=1000").json?["events"]?.arrayValue ?? []
            #expect(all.count > 5)
            var cursor: Int64 = 0
            var seen: [Int64] = []
            for _ in 0..<all.count {
                let page = try await api.get("/api/v1/events?after=\(cursor)&limit=2")
                let cursors = page.json?["events"]?.arrayValue?.compactMap { $0["cursor"]?.intValue } ?? []
                if cursors.isEmpty { break }
                #expect(cursors.count <= 2)
                seen += cursors
                cursor = try #require(page.json?["nextCursor"]?.intValue)
            }
            #expect(seen == all.compactMap { $0["cursor"]?.intValue })
        }
    }

    @Test("server-sent events: a write made while following the stream arrives as a frame")
    func serverSentEvents() async throws {
        let harness = try await APITestHarness()
        defer { harness.directory.remove() }
        let app = Application(router: harness.makeRouter())
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let start = try await harness.store.latestEventCursor()
            let viewer = try #require(harness.secrets["viewer"])
            let operatorSecret = try #require(harness.secrets["operator"])
            let http = HTTPClient(eventLoopGroupProvider: .singleton)

            let outcome = await Result<Void, any Error> {
                try await withTimeout(.seconds(30)) {
                    var request = HTTPClientRequest(url: "http://localhost:\(port)/api/v1/events/stream?after=\(start)")
                    request.headers.add(name: "Authorization", value: "Bearer \(viewer)")
                    let response = try await http.execute(request, timeout: .seconds(30))
                    #expect(response.status == .ok)
                    #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
                    #expect(response.headers.first(name: "Cache-Control") == "no-cache")
                    var stream = SSEReader(response.body.makeAsyncIterator())

                    // The stream opens with a comment naming its starting cursor.
                    let opening = try #require(try await stream.next())
                    #expect(opening.comment == "anvil event stream from cursor \(start)")

                    // A write made through the API while the stream is open…
                    let created = try await client.execute(
                        uri: "/api/v1/machines", method: .post,
                        headers: [.authorization: "Bearer \(operatorSecret)", .contentType: "application/json"],
                        body: ByteBuffer(string: #"{"name": "streamed"}"#))
                    #expect(created.status == .created)
                    let id = try #require(try JSONDecoder().decode(JSONValue.self, from: Data(String(buffer: created.body).utf8))["id"]?.stringValue)

                    // …arrives as an `id:` / `event:` / `data:` frame (keep-alive comments may come first).
                    var frame = try #require(try await stream.next())
                    while frame.event == nil { frame = try #require(try await stream.next()) }
                    #expect(frame.event == "machine.created")
                    let cursor = try #require(frame.id.flatMap { Int64($0) })
                    #expect(cursor > start)
                    let data = try JSONDecoder().decode(JSONValue.self, from: Data(try #require(frame.data).utf8))
                    #expect(data["cursor"] == .integer(cursor))
                    #expect(data["key"] == .string(id))
                    #expect(data["kind"] == "machine")
                    #expect(data["action"] == "created")
                    #expect(data["actor"] == "token:operator")
                    #expect(data["object"]?["name"] == "streamed")
                }
            }
            try await http.shutdown()
            try outcome.get()
        }
    }

    @Test("server-sent events: Last-Event-ID resumes after that event, replaying what came since")
    func serverSentEventsResume() async throws {
        let harness = try await APITestHarness()
        defer { harness.directory.remove() }
        let app = Application(router: harness.makeRouter())
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let viewer = try #require(harness.secrets["viewer"])
            let events = try await harness.store.events(after: 0, limit: 1000)
            #expect(events.count >= 3)
            let resumeAfter = events[events.count - 3].cursor
            let http = HTTPClient(eventLoopGroupProvider: .singleton)

            let outcome = await Result<Void, any Error> {
                try await withTimeout(.seconds(30)) {
                    var request = HTTPClientRequest(url: "http://localhost:\(port)/api/v1/events/stream?after=0")
                    request.headers.add(name: "Authorization", value: "Bearer \(viewer)")
                    request.headers.add(name: "Last-Event-ID", value: "\(resumeAfter)")
                    let response = try await http.execute(request, timeout: .seconds(30))
                    #expect(response.status == .ok)
                    var stream = SSEReader(response.body.makeAsyncIterator())
                    var replayed: [SSEFrame] = []
                    while replayed.count < 2 {
                        let frame = try #require(try await stream.next())
                        if frame.event != nil { replayed.append(frame) }
                    }
                    #expect(replayed.map(\.id) == events.suffix(2).map { "\($0.cursor)" })
                    #expect(replayed.map(\.event) == events.suffix(2).map { "\($0.kind.rawValue).\($0.action.rawValue)" })
                }
            }
            try await http.shutdown()
            try outcome.get()
        }
    }
}

/// One server-sent events frame: fields, or a comment line.
struct SSEFrame: Sendable, Equatable {
    var id: String?
    var event: String?
    var data: String?
    var comment: String?
}

/// Splits a text/event-stream body into frames as the bytes arrive.
struct SSEReader {
    var iterator: HTTPClientResponse.Body.AsyncIterator
    var pending = ""

    init(_ iterator: HTTPClientResponse.Body.AsyncIterator) {
        self.iterator = iterator
    }

    /// The next frame, or nil when the stream ends.
    mutating func next() async throws -> SSEFrame? {
        while true {
            if let end = pending.range(of: "\n\n") {
                let block = pending[..<end.lowerBound]
                pending.removeSubrange(..<end.upperBound)
                var frame = SSEFrame()
                for line in block.split(separator: "\n") {
                    if line.hasPrefix(":") {
                        frame.comment = line.dropFirst().trimmingCharacters(in: .whitespaces)
                    } else if let colon = line.firstIndex(of: ":") {
                        let value = String(line[line.index(after: colon)...].drop { $0 == " " })
                        switch line[..<colon] {
                        case "id": frame.id = value
                        case "event": frame.event = value
                        case "data": frame.data = (frame.data.map { $0 + "\n" } ?? "") + value
                        default: break
                        }
                    }
                }
                return frame
            }
            guard let chunk = try await iterator.next() else { return nil }
            pending += String(buffer: chunk)
        }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String { "gave up waiting" }
}

/// Runs `body`, giving up (and cancelling it) after `limit`. Only bounds a wait; asserts nothing about time.
func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut() }
        return value
    }
}

extension Result where Failure == any Error {
    /// `Result(catching:)` for async bodies.
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
