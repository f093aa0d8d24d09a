import ApplianceTesting
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ProvisioningModel
import SQLiteInventory
import Testing

/// `/files/` on a live boot plane (real sockets on loopback, the sendfile handler in the pipeline):
/// the roots searched in order and the symlink rules of each. Transfers, ranges, keep-alive and
/// pipelining are driven with curl against `anvil serve` (ApplianceTests, "Boot files over HTTP").
@Suite("Boot files on a live boot plane")
struct BootFileServingTests {
    @Test("roots in order: the first holding the file wins; links out of a root are refused unless the root allows them")
    func rootsAndLinks() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-boot-roots")
        defer { directory.remove() }
        let site = directory.file("site")
        let loaders = directory.file("loaders")
        let elsewhere = directory.file("elsewhere")
        for folder in [site, loaders, elsewhere] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        try "site copy\n".write(toFile: site + "/both.bin", atomically: true, encoding: .utf8)
        try "loader copy\n".write(toFile: loaders + "/both.bin", atomically: true, encoding: .utf8)
        try "only the loader\n".write(toFile: loaders + "/loader.efi", atomically: true, encoding: .utf8)
        try "outside\n".write(toFile: elsewhere + "/target.efi", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: site + "/escape.efi", withDestinationPath: elsewhere + "/target.efi")
        try FileManager.default.createSymbolicLink(
            atPath: loaders + "/linked.efi", withDestinationPath: elsewhere + "/target.efi")
        try FileManager.default.createDirectory(atPath: site + "/folder", withIntermediateDirectories: true)

        let harness = try await APITestHarness(seed: false)
        defer {
            harness.store.close()
            harness.directory.remove()
        }
        let environment = BootPlaneEnvironment(
            machineFiles: harness.machineFiles(templates: AnvilServer.repositoryRoot + "/templates"),
            bootFileRoots: [BootFileRoot(path: site), BootFileRoot(path: loaders, symlinksMayLeaveRoot: true)],
            unknownBootEnv: nil, metricsText: { "" }, logger: Logger(label: "test"))
        let app = Application(router: BootPlane.makeRouter(environment), server: BootPlane.server(environment))
        try await app.test(.live) { client in
            let both = try await client.execute(uri: "/files/both.bin", method: .get)
            #expect(both.status == .ok && String(buffer: both.body) == "site copy\n")
            let loader = try await client.execute(uri: "/files/loader.efi", method: .get)
            #expect(loader.status == .ok && String(buffer: loader.body) == "only the loader\n")
            #expect(loader.headers[.contentLength] == "16" && loader.headers[.eTag] != nil)
            let linked = try await client.execute(uri: "/files/linked.efi", method: .get)
            #expect(linked.status == .ok && String(buffer: linked.body) == "outside\n")

            let escape = try await client.execute(uri: "/files/escape.efi", method: .get)
            #expect(escape.status == .forbidden)
            #expect(String(buffer: escape.body).contains("\"code\":\"access_violation\""), "\(String(buffer: escape.body))")
            #expect(!String(buffer: escape.body).contains("outside\n"))
            for missing in ["/files/folder", "/files/nothing.efi"] {
                let response = try await client.execute(uri: missing, method: .get)
                #expect(response.status == .notFound, "\(missing)")
                #expect(
                    String(buffer: response.body).contains("\"code\":\"not_found\""),
                    "\(missing): \(String(buffer: response.body))")
                #expect(response.headers[.contentType] == "application/json")
            }
            let head = try await client.execute(uri: "/files/both.bin", method: .head)
            #expect(head.status == .ok && head.headers[.contentLength] == "10" && head.body.readableBytes == 0)

            // The router still answers everything else on the same connection, in the same error shape.
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok)
            let post = try await client.execute(uri: "/files/both.bin", method: .post)
            #expect([.notFound, .methodNotAllowed].contains(post.status), "\(post.status)")
            #expect(String(buffer: post.body).contains("\"error\""), "\(String(buffer: post.body))")
        }
    }
}
