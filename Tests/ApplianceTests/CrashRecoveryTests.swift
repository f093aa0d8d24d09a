import ApplianceTesting
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ProvisioningModel
import NIOSSL
import SQLiteInventory
import Synchronization
import Testing

/// kill -9 while clients write: every write the API acknowledged must be there after a restart,
/// and the database must be intact.
@Suite("crash recovery")
struct CrashRecoveryTests {
    @Test("kill -9 during concurrent writes loses no acknowledged machine")
    func killDuringWrites() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start()
        let secret = try String(contentsOfFile: directory.file("data/admin.token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(directory.file("data/tls/ca.pem")))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))

        let acknowledged = AcknowledgedNames()
        let adminURL = server.adminURL
        // Eight writers create machines until the server disappears under them (bounded in count).
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        for index in 0..<2_000 {
                            let name = "crash-\(writer)-\(index)"
                            var request = HTTPClientRequest(url: adminURL + "/api/v1/machines")
                            request.method = .POST
                            request.headers.add(name: "Authorization", value: "Bearer \(secret)")
                            request.headers.add(name: "Content-Type", value: "application/json")
                            let mac = String(format: "52:54:01:%02x:%02x:%02x", writer, index >> 8, index & 0xff)
                            request.body = .bytes(ByteBuffer(string: #"{"name":"\#(name)","interfaces":[{"mac":"\#(mac)"}]}"#))
                            guard let response = try? await client.execute(request, timeout: .seconds(30)),
                                response.status == .created,
                                (try? await response.body.collect(upTo: 1 << 20)) != nil
                            else { return }
                            acknowledged.names.withLock { $0.append(name) }
                        }
                    }
                }
            }
        }
        // Let a few hundred writes land, then pull the plug mid-stream (bounded wait).
        let deadline = ContinuousClock.now + .seconds(300)
        while acknowledged.names.withLock({ $0.count }) < 300 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        server.kill9()
        await writers.value
        try await client.shutdown()
        let before = acknowledged.names.withLock { $0 }
        #expect(before.count >= 300, "writes were acknowledged before the crash")

        // A fresh process on the same data directory.
        try await server.start()
        let listed = try await server.cli(["machines", "list", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let present = Set(
            (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
        let lost = before.filter { !present.contains($0) }
        #expect(lost.isEmpty, "acknowledged but lost after kill -9: \(lost.prefix(10))")
        await server.stop()

        let store = try SQLiteInventory(path: directory.file("data/inventory.db"))
        #expect(try await store.integrityCheck() == "ok")
        let events = try await store.events(after: 0, limit: 100_000)
        let cursors = events.map(\.cursor)
        #expect(cursors == cursors.sorted() && Set(cursors).count == cursors.count, "event cursors stay strictly increasing")
        let createdMachines = Set(events.filter { $0.kind == .machine && $0.action == .created }.map(\.key))
        #expect(createdMachines.count == present.count, "one durable created-event per stored machine")
    }
}

/// Names the server answered 201 for, shared by the writer tasks.
final class AcknowledgedNames: Sendable {
    let names = Mutex<[String]>([])
}
