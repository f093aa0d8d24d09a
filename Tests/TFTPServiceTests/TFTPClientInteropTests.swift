import ApplianceTesting
import Foundation
import Testing

/// Real TFTP clients (tftp-hpa, atftp, curl) against the real server on loopback: every file size at
/// the block edges, every block size the issue names, windows where the client has them; the bytes
/// must be identical.
@Suite("TFTP interop with real clients", .serialized, .timeLimit(.minutes(10)))
struct TFTPClientInteropTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var client: TFTPClient
        var file: String
        var blockSize: Int?
        var windowSize: Int?
        var testDescription: String { "\(client) \(file) blksize \(blockSize.map(String.init) ?? "-") windowsize \(windowSize.map(String.init) ?? "-")" }
    }

    static let cases: [Case] = {
        var cases: [Case] = []
        for file in TestFiles.sizes.keys.sorted() {
            cases.append(Case(client: .tftpHPA, file: file))
            for blockSize in [512, 1468, 8192, 65464] {
                cases.append(Case(client: .curl, file: file, blockSize: blockSize))
                cases.append(Case(client: .atftp, file: file, blockSize: blockSize))
            }
            cases.append(Case(client: .atftp, file: file, blockSize: 1468, windowSize: 16))
        }
        return cases
    }()

    @Test("byte-identical fetches", arguments: cases)
    func fetch(_ testCase: Case) async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-tftp")
        defer { directory.remove() }
        let root = try TestFiles.populate(directory, large: testCase.file == "40m.bin")
        try await TFTPTestServer.with(root: root) { server in
            let local = directory.file("fetched")
            let result = try await testCase.client.fetch(
                testCase.file, into: local, port: server.port, blockSize: testCase.blockSize, windowSize: testCase.windowSize)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            let fetched = try #require(TestFiles.bytes(local), "no file written")
            let expected = try #require(TestFiles.bytes(root + "/" + testCase.file))
            #expect(fetched.count == expected.count)
            #expect(fetched == expected ? true : false, "content differs")
        }
    }

    @Test("netascii: the client gets the text back with its own line ends", arguments: [TFTPClient.tftpHPA, .atftp])
    func netascii(_ client: TFTPClient) async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-tftp")
        defer { directory.remove() }
        let root = try TestFiles.populate(directory)
        try await TFTPTestServer.with(root: root) { server in
            let local = directory.file("notes.txt")
            let result = try await client.fetch("notes.txt", into: local, port: server.port, netascii: true)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(TestFiles.bytes(local) == TestFiles.text)
        }
    }

    @Test("200 parallel fetches of a 1 MiB file by real clients all succeed with identical bytes")
    func parallelFetches() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-tftp")
        defer { directory.remove() }
        let root = try TestFiles.populate(directory)
        let expected = try #require(TestFiles.bytes(root + "/1m.bin"))
        try await TFTPTestServer.with(root: root) { server in
            let failures = try await withThrowingTaskGroup(of: String?.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let client = TFTPClient.allCases[index % TFTPClient.allCases.count]
                        let local = directory.file("parallel-\(index)")
                        let result = try await client.fetch("1m.bin", into: local, port: server.port, blockSize: client == .tftpHPA ? nil : 1468)
                        guard result.status == 0 else { return "\(client) #\(index): exit \(result.status) \(result.stderr)" }
                        guard TestFiles.bytes(local) == expected else { return "\(client) #\(index): content differs" }
                        try? FileManager.default.removeItem(atPath: local)
                        return nil
                    }
                }
                return try await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
            }
            #expect(failures.isEmpty, "\(failures.count) of 200 failed: \(failures.prefix(5))")
        }
    }

    @Test("a write request from a real client is refused and creates nothing")
    func writeRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-tftp")
        defer { directory.remove() }
        let root = try TestFiles.populate(directory)
        try Data("upload".utf8).write(to: URL(fileURLWithPath: directory.file("upload.txt")))
        try await TFTPTestServer.with(root: root) { server in
            let result = try await AnvilServer.run(
                "/usr/bin/curl", ["--silent", "--show-error", "-T", directory.file("upload.txt"), "tftp://127.0.0.1:\(server.port)/upload.txt"])
            // 69 is curl's "TFTP: access violation", the code the server answers a write with.
            #expect(result.status == 69, "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: root + "/upload.txt"))
        }
    }
}
