import ApplianceTesting
import Foundation
import MetricsTestKit
import NIOCore
import TFTPService
import TFTPWire
import Testing

/// The server's side of the protocol seen through hand-made packets on a raw socket: TIDs,
/// retransmitted requests, refusals, malformed input, path confinement, the transfer limit.
@Suite("TFTP protocol rules", .timeLimit(.minutes(5)))
struct TFTPProtocolTests {
    func withServer(
        configuration: TFTPService.Configuration = .init(host: "127.0.0.1", port: 0),
        metrics: TestMetrics = TestMetrics(),
        _ body: @Sendable (TFTPTestServer, UDPPeer) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-tftp")
        defer { directory.remove() }
        let root = try TestFiles.populate(directory)
        try await TFTPTestServer.with(root: root, configuration: configuration, metricsFactory: metrics) { server in
            let peer = try await UDPPeer.bind()
            defer { peer.close() }
            try await body(server, peer)
        }
    }

    @Test("each transfer answers from its own port (TID), never the listening one")
    func transferPort() async throws {
        try await withServer { server, peer in
            let (bytes, port) = try await peer.fetch(TFTPRequest(filename: "511.bin", mode: .octet), from: server.port)
            #expect(bytes == TestFiles.bytes(server.root + "/511.bin"))
            #expect(port != server.port && port != 0)
        }
    }

    @Test("a packet from a stranger TID gets ERROR 5 and the transfer carries on")
    func strangerTransferID() async throws {
        try await withServer { server, peer in
            try await peer.send(.readRequest(TFTPRequest(filename: "1m.bin", mode: .octet, options: [TFTPOption("blksize", "1024")])), to: server.port)
            let oack = try #require(try await peer.receive())
            #expect(oack.packet == .optionAcknowledgement([TFTPOption("blksize", "1024")]))
            let stranger = try await UDPPeer.bind()
            defer { stranger.close() }
            try await stranger.send(.acknowledgement(block: 0), to: oack.port)
            let refusal = try #require(try await stranger.receive())
            #expect(refusal.packet == .error(code: .unknownTransferID, message: "unknown transfer ID"))
            // The real client now runs the whole transfer.
            try await peer.send(.acknowledgement(block: 0), to: oack.port)
            var received: [UInt8] = []
            var expected: UInt16 = 1
            for _ in 0..<4000 {
                guard let datagram = try await peer.receive(), case .data(let block, let payload) = datagram.packet else {
                    Issue.record("transfer stopped after \(received.count) bytes")
                    return
                }
                try await peer.send(.acknowledgement(block: block), to: datagram.port)
                guard block == expected else { continue }  // a retransmission of a block already kept
                expected &+= 1
                received += payload.readableBytesView
                if payload.readableBytes < 1024 { break }
            }
            #expect(received == TestFiles.bytes(server.root + "/1m.bin"))
        }
    }

    @Test("a retransmitted request does not start a second transfer")
    func duplicateRequest() async throws {
        try await withServer { server, peer in
            let request = TFTPPacket.readRequest(TFTPRequest(filename: "512.bin", mode: .octet))
            try await peer.send(request, to: server.port)
            try await peer.send(request, to: server.port)
            let first = try #require(try await peer.receive())
            #expect(first.packet.map { if case .data(1, _) = $0 { true } else { false } } == true)
            // Only the transfer's own retransmission timer may send DATA 1 again, about a second later;
            // a second transfer would answer at once from another port.
            let second = try await peer.receive(timeout: .milliseconds(500))
            #expect(second == nil, "a second answer came from port \(second?.port ?? 0)")
        }
    }

    @Test("a write request is refused with access violation")
    func writeRequest() async throws {
        try await withServer { server, peer in
            try await peer.send(.writeRequest(TFTPRequest(filename: "new.bin", mode: .octet)), to: server.port)
            #expect(try await peer.receive()?.packet == .error(code: .accessViolation, message: "this server is read-only"))
            #expect(!FileManager.default.fileExists(atPath: server.root + "/new.bin"))
        }
    }

    @Test("paths that leave the root are refused with access violation", arguments: [
        "../../etc/passwd", "/etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "pxelinux.cfg/../../escape", "%2E%2E/x", "escape",
        "escape-dir/passwd", "a\u{01}b",
    ])
    func traversal(_ path: String) async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-tftp")
        defer { directory.remove() }
        let root = try TestFiles.populate(directory)
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: root + "/escape-dir", withDestinationPath: "/etc")
        try await TFTPTestServer.with(root: root) { server in
            let peer = try await UDPPeer.bind()
            defer { peer.close() }
            try await peer.send(.readRequest(TFTPRequest(filename: path, mode: .octet)), to: server.port)
            let answer = try #require(try await peer.receive())
            guard case .error(let code, let message) = answer.packet else {
                Issue.record("'\(path)' was served: \(answer.bytes.prefix(40))")
                return
            }
            #expect(code == .accessViolation, "'\(path)': \(message)")
            #expect(message.hasPrefix("access violation"))
        }
    }

    @Test("a symlink that stays inside the root is served")
    func symlinkInside() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-tftp")
        defer { directory.remove() }
        let root = try TestFiles.populate(directory)
        try FileManager.default.createSymbolicLink(atPath: root + "/loader.efi", withDestinationPath: "511.bin")
        try await TFTPTestServer.with(root: root) { server in
            let peer = try await UDPPeer.bind()
            defer { peer.close() }
            let (bytes, _) = try await peer.fetch(TFTPRequest(filename: "loader.efi", mode: .octet), from: server.port)
            #expect(bytes == TestFiles.bytes(root + "/511.bin"))
        }
    }

    @Test("a missing file is ERROR 1")
    func missing() async throws {
        try await withServer { server, peer in
            try await peer.send(.readRequest(TFTPRequest(filename: "nope.efi", mode: .octet)), to: server.port)
            #expect(try await peer.receive()?.packet == .error(code: .fileNotFound, message: "file not found"))
        }
    }

    @Test("malformed requests are answered with ERROR 4 (or dropped) and the server keeps serving", arguments: [
        ("no NUL terminator", [0, 1] + Array("511.bin".utf8)),
        ("unknown opcode", [0, 42, 1, 2, 3]),
        ("zero-length filename", [0, 1, 0] + Array("octet".utf8) + [0]),
        ("unknown mode", [0, 1] + Array("511.bin".utf8) + [0] + Array("binary".utf8) + [0]),
        ("option without value", [0, 1] + Array("511.bin".utf8) + [0] + Array("octet".utf8) + [0] + Array("blksize".utf8) + [0]),
        ("one byte", [7]),
        ("mail mode", [0, 1] + Array("511.bin".utf8) + [0] + Array("mail".utf8) + [0]),
    ] as [(String, [UInt8])])
    func malformed(_ reason: String, _ bytes: [UInt8]) async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics) { server, peer in
            try await peer.send(bytes, to: server.port)
            let answer = try #require(try await peer.receive(), "\(reason): no answer")
            guard case .error(let code, _) = answer.packet else {
                Issue.record("\(reason): answered \(answer.bytes)")
                return
            }
            #expect(code == .illegalOperation)
            let (fetched, _) = try await peer.fetch(TFTPRequest(filename: "511.bin", mode: .octet), from: server.port)
            #expect(fetched.count == 511, "still serving after \(reason)")
        }
        let refused = try metrics.expectCounter("anvil_tftp_requests_refused_total", [("reason", reason == "mail mode" ? "unsupported_mode" : "malformed")])
        #expect(refused.totalValue == 1)
    }

    @Test("ERROR, DATA and ACK packets on the listening port are never answered with a transfer")
    func strayPackets() async throws {
        try await withServer { server, peer in
            try await peer.send(.error(code: .notDefined, message: "bye"), to: server.port)
            #expect(try await peer.receive(timeout: .milliseconds(300)) == nil, "an ERROR is never answered")
            try await peer.send(.acknowledgement(block: 1), to: server.port)
            #expect(try await peer.receive()?.packet == .error(code: .unknownTransferID, message: "no transfer on this port"))
        }
    }

    @Test("absurd option values are ignored: the transfer runs on RFC 1350 defaults", arguments: [
        [TFTPOption("blksize", "99999999999"), TFTPOption("windowsize", "0")],
        [TFTPOption("blksize", "abc"), TFTPOption("timeout", "-1")],
        [TFTPOption("blksize", "4"), TFTPOption("timeout", "1000")],
        [TFTPOption("x-unknown", "1")],
    ])
    func absurdOptions(_ options: [TFTPOption]) async throws {
        try await withServer { server, peer in
            try await peer.send(.readRequest(TFTPRequest(filename: "1m.bin", mode: .octet, options: options)), to: server.port)
            let first = try #require(try await peer.receive())
            guard case .data(1, let payload) = first.packet else {
                Issue.record("expected DATA 1, got \(first.bytes.prefix(16))")
                return
            }
            #expect(payload.readableBytes == 512)
            try await peer.send(.error(code: .notDefined, message: "enough"), to: first.port)
        }
    }

    @Test("the concurrent-transfer limit answers 'server busy' and frees its slots when transfers end")
    func transferLimit() async throws {
        var configuration = TFTPService.Configuration(host: "127.0.0.1", port: 0, maximumTransfers: 2)
        configuration.transfer = TFTPReadTransfer.Configuration(retransmissionTimeout: .seconds(5), retransmissionLimit: 1)
        try await withServer(configuration: configuration) { server, peer in
            var holders: [UDPPeer] = []
            defer { holders.forEach { $0.close() } }
            var transferPorts: [Int] = []
            for _ in 0..<2 {
                let holder = try await UDPPeer.bind()
                holders.append(holder)
                try await holder.send(.readRequest(TFTPRequest(filename: "1m.bin", mode: .octet)), to: server.port)
                transferPorts.append(try #require(try await holder.receive()).port)
            }
            try await peer.send(.readRequest(TFTPRequest(filename: "511.bin", mode: .octet)), to: server.port)
            let busy = try #require(try await peer.receive())
            guard case .error(.notDefined, let message) = busy.packet else {
                Issue.record("expected busy, got \(busy.bytes.prefix(16))")
                return
            }
            #expect(message.contains("server busy"), "\(message)")
            // One holder gives up; its slot is free again.
            try await holders[0].send(.error(code: .notDefined, message: "cancelled"), to: transferPorts[0])
            var served = false
            for _ in 0..<50 where !served {
                try await Task.sleep(for: .milliseconds(20))
                if let (bytes, _) = try? await peer.fetch(TFTPRequest(filename: "511.bin", mode: .octet), from: server.port) {
                    served = bytes.count == 511
                }
            }
            #expect(served)
        }
    }

    @Test("metrics count started and completed transfers and the bytes sent")
    func metrics() async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics) { server, peer in
            for _ in 0..<3 { _ = try await peer.fetch(TFTPRequest(filename: "1m.bin", mode: .octet, options: [TFTPOption("blksize", "1468")]), from: server.port) }
            // A transfer completes when the server has the final ACK, which the client sent just now:
            // stopping the server before it arrives would end that transfer as failed.
            for _ in 0..<250 where (try? metrics.expectCounter("anvil_tftp_transfers_completed_total").totalValue) != 3 {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(try metrics.expectCounter("anvil_tftp_transfers_started_total").totalValue == 3)
        #expect(try metrics.expectCounter("anvil_tftp_transfers_completed_total").totalValue == 3)
        // Bytes on the wire include retransmissions, which a loaded machine can cause: at least the files.
        #expect(try metrics.expectCounter("anvil_tftp_bytes_sent_total").totalValue >= 3 << 20)
    }
}
