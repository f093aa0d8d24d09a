import ApplianceTesting
import Foundation
import Testing

/// The real `anvil serve` in a namespace of the test's own whose loopback drops a share of all UDP
/// datagrams (nftables; this kernel has no netem): real clients still get byte-identical files,
/// and the server's retransmissions show in its metrics.
@Suite("TFTP under packet loss", .serialized)
struct TFTPUnderLossTests {
    @Test("10% UDP loss: tftp-hpa, atftp (window 16) and curl complete with identical bytes")
    func lossyLink() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-tftp-loss")
        defer { directory.remove() }
        let namespace = try await NetworkNamespace.create()
        defer { namespace.delete() }
        let bootFiles = directory.file("boot-files")
        try FileManager.default.createDirectory(atPath: bootFiles, withIntermediateDirectories: true)
        // Not a multiple of any block size: 48 KiB + 100 bytes.
        let expected = (0..<(48 * 1024 + 100)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        try Data(expected).write(to: URL(fileURLWithPath: bootFiles + "/loader.bin"))

        let server = AnvilServer(dataDirectory: directory.file("data"), namespace: namespace)
        try await server.start(extraArguments: ["--boot-files-dir", bootFiles])
        defer { server.stopBlocking() }
        let port = try #require(URL(string: server.tftpURL)?.port, "no TFTP address: \(server.tftpURL)")

        try await namespace.run(["nft", "add", "table", "inet", "loss"])
        // Dropped on the way in, as a lossy wire would: a drop on the way out fails the sender's
        // sendto with EPERM instead, which no real link does.
        try await namespace.run(["nft", "add", "chain", "inet", "loss", "in", "{ type filter hook input priority 0; }"])
        try await namespace.run(["nft", "add", "rule", "inet", "loss", "in", "meta", "l4proto", "udp", "numgen", "random", "mod", "100", "<", "10", "drop"])

        for (client, blockSize, windowSize) in [(TFTPClient.tftpHPA, nil, nil), (.atftp, 1468, 16), (.curl, 1468, nil)] as [(TFTPClient, Int?, Int?)] {
            let local = directory.file("fetched-\(client)")
            // atftp gives up on a retransmitted OACK ("unexpected OACK": its ACK 0 was the dropped
            // packet, and the server rightly sent the OACK again), so each client gets a few tries,
            // as a booting machine's firmware would; a server that cannot finish fails them all.
            var result = try await client.fetch("loader.bin", into: local, port: port, blockSize: blockSize, windowSize: windowSize, in: namespace)
            var failures: [String] = []
            for _ in 0..<4 where result.status != 0 {
                failures.append(result.stdout + result.stderr)
                result = try await client.fetch("loader.bin", into: local, port: port, blockSize: blockSize, windowSize: windowSize, in: namespace)
            }
            #expect(result.status == 0, "\(client) failed 5 times: \(failures)")
            let fetched = FileManager.default.contents(atPath: local).map { [UInt8]($0) }
            #expect(fetched?.count == expected.count, "\(client): \(fetched?.count ?? -1) bytes")
            #expect(fetched == expected ? true : false, "\(client): content differs")
        }

        // The metrics come over TCP, which the rule leaves alone.
        let metrics = try await namespace.run(["curl", "--silent", "--max-time", "30", "\(server.bootURL)/metrics"]).stdout
        let retransmissions = metrics.split(separator: "\n").first { $0.hasPrefix("anvil_tftp_retransmissions_total ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") }
        #expect((retransmissions ?? 0) > 0, "the server retransmitted nothing under 10% loss:\n\(metrics.prefix(3000))")
        #expect(await server.stop() == 0)
    }
}
