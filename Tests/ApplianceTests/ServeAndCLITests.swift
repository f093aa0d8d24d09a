import ApplianceTesting
import Foundation
import Testing

/// The real `anvil serve` on loopback, driven by the real `anvil` CLI, as an operator would.
@Suite("anvil serve + CLI", .serialized)
struct ServeAndCLITests {
    @Test("first start creates the admin token once, 0600; the CLI finds server, token and CA from the data directory")
    func firstStartAndLocalDefaults() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start()
        let tokenPath = directory.file("data/admin.token")
        let secret = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("anvil_"))
        let permissions = try FileManager.default.attributesOfItem(atPath: tokenPath)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        #expect(server.log.contains(secret), "the secret is printed once on first start")
        #expect(server.adminURL.hasPrefix("https://127.0.0.1:"))

        let info = try await server.cli(["info", "--json"])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("\"version\""))

        #expect(await server.stop() == 0, "SIGTERM stops the server cleanly")
        try await server.start()
        #expect(server.log.components(separatedBy: "Created the first admin API token").count == 2, "printed on the first start only")
        let tokens = try await server.cli(["tokens", "list", "--json"])
        #expect(tokens.status == 0)
        #expect(tokens.stdout.components(separatedBy: "\"name\"").count == 2, "still exactly one token after a restart")
        await server.stop()
    }

    @Test("an operator manages machines with the CLI: create from YAML, filter, show by name, patch, delete")
    func machineLifecycleThroughTheCLI() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start()
        defer { server.stopBlocking() }

        let yaml = """
            name: rack1-node1
            architecture: amd64
            interfaces:
              - mac: 52-54-00-00-10-01
                boot: true
            facts:
              systemSerial: SN-1001
              memoryBytes: 68719476736
            """
        try yaml.write(toFile: directory.file("node1.yaml"), atomically: true, encoding: .utf8)
        let created = try await server.cli(["machines", "create", "-f", directory.file("node1.yaml")])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("52:54:00:00:10:01"), "MACs are stored canonically: \(created.stdout)")

        let second = try await server.cli(["machines", "create", "--set", "name=rack1-node2", "--set", #"interfaces=[{"mac":"52:54:00:00:10:02"}]"#])
        #expect(second.status == 0, "\(second.stderr)")

        let filtered = try await server.cli(["machines", "list", "--filter", "mac=5254.0000.1001"])
        #expect(filtered.status == 0)
        #expect(filtered.stdout.contains("rack1-node1") && !filtered.stdout.contains("rack1-node2"))

        let ready = try await server.cli(["machines", "update", "rack1-node1", "--set", "state=ready"])
        #expect(ready.status == 0, "\(ready.stderr)")
        let readyList = try await server.cli(["machines", "list", "--filter", "state=ready", "--json"])
        #expect(readyList.stdout.contains("rack1-node1") && !readyList.stdout.contains("rack1-node2"))

        let illegal = try await server.cli(["machines", "update", "rack1-node2", "--set", "state=deployed"])
        #expect(illegal.status == 6, "invalid input has its own exit code")
        #expect(illegal.stderr.contains("cannot move from discovered to deployed"))

        let duplicate = try await server.cli(["machines", "create", "--set", "name=other", "--set", #"interfaces=[{"mac":"52:54:00:00:10:01"}]"#])
        #expect(duplicate.status == 5)
        #expect(duplicate.stderr.contains("already belongs to machine 'rack1-node1'"))

        let stale = try await server.cli(["machines", "update", "rack1-node1", "--set", "description=x", "--if-revision", "1"])
        #expect(stale.status == 5, "a stale revision is a conflict")

        let resolved = try await server.cli(["params", "resolve", "install-disk", "--machine", "rack1-node1"])
        #expect(resolved.status == 0, "\(resolved.stderr)")
        #expect(resolved.stdout.contains("/dev/sda") && resolved.stdout.contains("from default"))

        let deleted = try await server.cli(["machines", "delete", "rack1-node2"])
        #expect(deleted.status == 0)
        let missing = try await server.cli(["machines", "show", "rack1-node2"])
        #expect(missing.status == 4)
        #expect(missing.stderr.contains("not_found"))

        let events = try await server.cli(["events", "--json"])
        #expect(events.stdout.contains("\"action\":\"deleted\""))
        #expect(events.stdout.contains("\"actor\":\"token:admin\""))
    }

    @Test("roles: a viewer token reads but cannot write; tokens are admin-only")
    func viewerToken() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start()
        defer { server.stopBlocking() }

        let created = try await server.cli(["tokens", "create", "--name", "dashboard", "--role", "viewer"])
        #expect(created.status == 0, "\(created.stderr)")
        let viewerSecret = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(viewerSecret.hasPrefix("anvil_"))
        let asViewer = ["--token", viewerSecret]
        #expect(try await server.cli(["bootenvs", "list"] + asViewer).status == 0)
        let write = try await server.cli(["machines", "create", "--set", "name=x"] + asViewer)
        #expect(write.status == 3)
        #expect(write.stderr.contains("forbidden"))
        #expect(try await server.cli(["tokens", "list"] + asViewer).status == 3)
        let wrong = try await server.cli(["info", "--token", "anvil_not-a-real-token"])
        #expect(wrong.status == 3)
        #expect(wrong.stderr.contains("invalid_token"))
    }

    @Test("the admin API is TLS: a client with the wrong CA refuses to talk; --insecure is explicit")
    func adminTLS() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start()
        defer { server.stopBlocking() }
        let other = try TemporaryDirectory()
        defer { other.remove() }
        let otherServer = AnvilServer(dataDirectory: other.file("data"))
        try await otherServer.start()
        await otherServer.stop()

        let wrongCA = try await server.cli(["info", "--ca-cert", other.file("data/tls/ca.pem")])
        #expect(wrongCA.status == 7, "\(wrongCA.stderr)")
        #expect(try await server.cli(["info", "--ca-cert", other.file("data/tls/ca.pem"), "--insecure"]).status == 0)
        let plain = try await AnvilServer.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", server.adminURL.replacingOccurrences(of: "https:", with: "http:") + "/healthz"])
        #expect(plain.stdout != "200", "the admin plane does not speak plain HTTP")
    }

    @Test("events --follow streams changes as they happen")
    func followEvents() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start()
        defer { server.stopBlocking() }

        async let followed = server.cli(["events", "--follow", "--count", "1", "--json"])
        // Keep creating until the follower has had time to subscribe; it prints the first one it sees.
        for index in 0..<30 {
            _ = try await server.cli(["profiles", "create", "--set", "name=p\(index)"])
            try await Task.sleep(for: .milliseconds(300))
            if index >= 3 { break }
        }
        let result = try await followed
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\"kind\":\"profile\"") && result.stdout.contains("\"action\":\"created\""))
    }

    @Test("both planes serve /healthz and Prometheus /metrics without a token; the boot plane has no admin API")
    func operationalEndpoints() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start()
        defer { server.stopBlocking() }
        let ca = directory.file("data/tls/ca.pem")

        _ = try await server.cli(["machines", "list"])
        let metrics = try await AnvilServer.run("/usr/bin/curl", ["-sS", "--cacert", ca, server.adminURL + "/metrics"])
        #expect(metrics.stdout.contains("hb_request"), "request counters and latencies are exported: \(metrics.stdout.prefix(300))")
        let health = try await AnvilServer.run("/usr/bin/curl", ["-sS", server.bootURL + "/healthz"])
        #expect(health.stdout == "ok\n")
        let noAPI = try await AnvilServer.run("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", server.bootURL + "/api/v1/machines"])
        #expect(noAPI.stdout == "404")
    }

    @Test("bad content is reported with file and line, and the server starts with the rest")
    func badContentDoesNotStopTheServer() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let content = directory.file("content")
        try FileManager.default.createDirectory(atPath: content + "/bootenvs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: content + "/templates/content", withIntermediateDirectories: true)
        try "name: discovery\n".write(toFile: content + "/bootenvs/discovery.yaml", atomically: true, encoding: .utf8)
        try "name: broken\narchitectures: [\n".write(toFile: content + "/bootenvs/broken.yaml", atomically: true, encoding: .utf8)
        try "name: typo\ndescriptoin: x\n".write(toFile: content + "/bootenvs/typo.yaml", atomically: true, encoding: .utf8)
        let server = AnvilServer(dataDirectory: directory.file("data"), contentDirectory: content)
        try await server.start()
        defer { server.stopBlocking() }
        #expect(server.log.contains("bootenvs/broken.yaml:"))
        #expect(server.log.contains("bootenvs/typo.yaml:2: unknown field 'descriptoin'"))
        let list = try await server.cli(["bootenvs", "list"])
        #expect(list.stdout.contains("discovery") && !list.stdout.contains("typo"))
    }

    @Test("configuration errors name the setting and stop the start with a clear message")
    func badConfiguration() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "dataDirectory: \(directory.file("data"))\nadmin:\n  listen: 0.0.0.0:9443\n  tls: off\nlogLevle: debug\n"
            .write(toFile: directory.file("anvil.yaml"), atomically: true, encoding: .utf8)
        let result = try await AnvilServer.run(AnvilServer.binary, ["serve", "--config", directory.file("anvil.yaml")])
        #expect(result.status != 0)
        #expect(result.stderr.contains("logLevle"), "\(result.stderr)")
        try "dataDirectory: \(directory.file("data"))\nadmin:\n  listen: 0.0.0.0:9443\n  tls: off\n"
            .write(toFile: directory.file("anvil.yaml"), atomically: true, encoding: .utf8)
        let insecure = try await AnvilServer.run(AnvilServer.binary, ["serve", "--config", directory.file("anvil.yaml")])
        #expect(insecure.status != 0)
        #expect(insecure.stderr.contains("admin.tls"), "\(insecure.stderr)")
    }
}
