import ApplianceTesting
import BootEnvRendering
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import ProvisioningModel
import SQLiteInventory
import Testing

/// Files boot environments declare, served on the boot plane and previewed through the admin API's
/// `render`, over one real SQLite inventory holding the shipped content.
@Suite("Rendered machine files")
struct RenderedFileTests {
    /// The admin API and the boot plane over the same inventory (shipped content loaded, no seed),
    /// rendering from `templates` (default: the repository's).
    static func withPlanes(
        templates: String = AnvilServer.repositoryRoot + "/templates",
        _ body: @Sendable (_ api: APIClient, _ boot: any TestClientProtocol) async throws -> Void
    ) async throws {
        let harness = try await APITestHarness(seed: false)
        defer {
            harness.store.close()
            harness.directory.remove()
        }
        let content = ContentLoader(root: URL(fileURLWithPath: AnvilServer.repositoryRoot)).load()
        #expect(content.problems.isEmpty, "\(content.problems)")
        _ = try await harness.store.loadContent(content.objects)
        let files = harness.machineFiles(templates: templates)
        let bootPlane = BootPlaneEnvironment(
            machineFiles: files, bootFileRoots: [], unknownBootEnv: "discovery", metricsText: { "" },
            logger: Logger(label: "test"))
        try await Application(router: harness.makeRouter(machineFiles: files)).test(.router) { admin in
            try await Application(router: BootPlane.makeRouter(bootPlane)).test(.router) { boot in
                try await body(APIClient(client: admin, harness: harness), boot)
            }
        }
    }

    static let mac = "52:54:00:00:10:01"

    /// Creates a machine booting `bootEnv` from `mac`; returns its id.
    static func createMachine(_ api: APIClient, name: String, bootEnv: String, params: JSONValue = [:]) async throws -> String {
        let machine = try await api.create(
            "machines",
            [
                "name": .string(name), "bootEnv": .string(bootEnv), "params": params,
                "interfaces": [["mac": .string(mac), "boot": true]],
            ])
        return try #require(machine["id"]?.stringValue)
    }

    /// The boot plane's answer and the render endpoint's, taken in one token window (a render's token
    /// counts from the start of a 5-minute window; should the window turn between the two, take both again).
    static func bothPlanes(
        _ boot: any TestClientProtocol, _ bootPath: String, _ api: APIClient, _ renderPath: String
    ) async throws -> (served: TestResponse, rendered: APIResponse) {
        while true {
            let window = Int(Date().timeIntervalSince1970 / 300)
            let served = try await boot.execute(uri: bootPath, method: .get, headers: [:], body: nil)
            let rendered = try await api.get(renderPath, as: .operator)
            if window == Int(Date().timeIntervalSince1970 / 300) { return (served, rendered) }
        }
    }

    static func history(_ api: APIClient, _ machine: String, action: String) async throws -> [JSONValue] {
        let response = try await api.get("/api/v1/machines/\(machine)/history?action=\(action)")
        #expect(response.status == .ok, "\(response)")
        return response.items
    }

    @Test(
        "a debian-12-install machine's preseed and iPXE script are rendered for it, equal the render endpoint, and are in its history"
    )
    func servedFilesMatchRender() async throws {
        try await Self.withPlanes { api, boot in
            let id = try await Self.createMachine(
                api, name: "node-preseed", bootEnv: "debian-12-install",
                params: ["root-password-hash": "$6$salt$hash", "domain": "lab.example"])

            let (served, rendered) = try await Self.bothPlanes(
                boot, "/machines/\(id)/preseed.cfg", api,
                "/api/v1/machines/node-preseed/render?bootenv=debian-12-install&file=preseed&bootURL=http://localhost")
            let preseed = String(buffer: served.body)
            #expect(served.status == .ok, "\(preseed)")
            #expect(served.headers[.contentType] == "text/plain; charset=utf-8")
            #expect(rendered.status == .ok, "\(rendered)")
            #expect(preseed == rendered.text)
            for line in [
                "# Anvil preseed for node-preseed (\(id)), boot environment debian-12-install",
                "d-i netcfg/get_hostname string node-preseed", "d-i netcfg/get_domain string lab.example",
                "d-i passwd/root-password-crypted password $6$salt$hash", "d-i partman-auto/disk string /dev/sda",
                "d-i clock-setup/ntp-server string pool.ntp.org",
            ] {
                #expect(preseed.contains(line + "\n"), "missing \(line) in:\n\(preseed)")
            }
            // The installer calls back with a token that is good for this machine only.
            let token = try #require(preseed.firstMatch(of: /token=([A-Za-z0-9._-]+)'/)?.output.1)
            #expect(api.harness.machineTokens.verify(String(token), now: Date()) == .success(ObjectID(id)!))

            let (script, renderedScript) = try await Self.bothPlanes(
                boot, "/boot/52-54-00-00-10-01.ipxe", api, "/api/v1/machines/\(id)/render?bootURL=http://localhost")
            #expect(script.status == .ok)
            #expect(String(buffer: script.body) == renderedScript.text)
            #expect(renderedScript.text.contains("url=http://localhost/machines/\(id)/preseed.cfg"), "\(renderedScript.text)")

            let servedFiles = try await Self.history(api, "node-preseed", action: "fileServed")
            var paths: [String] = []
            for path in servedFiles.compactMap({ $0["detail"]?["path"]?.stringValue }) where paths.last != path {
                paths.append(path)
            }
            #expect(paths == ["machines/\(id)/preseed.cfg", "boot/52-54-00-00-10-01.ipxe"])
            #expect(servedFiles.allSatisfy { $0["detail"]?["bootenv"] == "debian-12-install" && $0["actor"] == "boot-plane" })
            #expect(servedFiles.first?["detail"]?["template"] == "preseed/debian-12.preseed.tmpl")
            // Previews are not something the machine got: they leave no history.
            _ = try await api.get("/api/v1/machines/node-preseed/render?file=preseed", as: .operator)
            #expect(try await Self.history(api, "node-preseed", action: "fileServed").count == servedFiles.count)
        }
    }

    @Test("a missing required param is a 500 naming the param and template, never half a file, and a renderFailed entry")
    func missingRequiredParam() async throws {
        try await Self.withPlanes { api, boot in
            let id = try await Self.createMachine(api, name: "no-password", bootEnv: "debian-12-install")
            let response = try await boot.execute(uri: "/machines/\(id)/preseed.cfg", method: .get, headers: [:], body: nil)
            let reason = String(buffer: response.body)
            #expect(response.status == .internalServerError)
            #expect(response.headers[.contentType] == "text/plain; charset=utf-8")
            #expect(reason.contains("required param 'root-password-hash' is not set"), "\(reason)")
            #expect(
                reason.contains("preseed/debian-12.preseed.tmpl") && reason.contains("machines/\(id)/preseed.cfg"), "\(reason)")
            #expect(!reason.contains("d-i "), "half a file was sent: \(reason)")

            let failures = try await Self.history(api, id, action: "renderFailed")
            #expect(failures.count == 1)
            #expect(failures.first?["detail"]?["template"] == "preseed/debian-12.preseed.tmpl")
            #expect(failures.first?["detail"]?["message"]?.stringValue == reason.trimmingCharacters(in: .newlines))
            #expect(try await Self.history(api, id, action: "fileServed").isEmpty)

            // The preview says the same, as an API error.
            let preview = try await api.get("/api/v1/machines/\(id)/render?bootenv=debian-12-install&file=preseed", as: .operator)
            preview.expectError(.unprocessableContent, "render_failed", field: "file")
            #expect(preview.error?["message"]?.stringValue?.contains("root-password-hash") == true, "\(preview)")
        }
    }

    @Test(
        "a template with a syntax error or an unknown variable is a 500 with the reason and a renderFailed entry",
        arguments: [
            ("{% for key in params.ssh-authorized-keys %}{{ key }}\n", "endfor"),
            ("hostname {{ machine.hostname }}\n", "line 1: unknown variable 'machine.hostname'"),
        ])
    func brokenTemplate(_ text: String, _ expected: String) async throws {
        let templates = try TemporaryDirectory(prefix: "anvil-templates")
        defer { templates.remove() }
        try FileManager.default.createDirectory(atPath: templates.file("preseed"), withIntermediateDirectories: true)
        try text.write(toFile: templates.file("preseed/broken.tmpl"), atomically: true, encoding: .utf8)
        try await Self.withPlanes(templates: templates.path) { api, boot in
            try await api.create(
                "bootenvs",
                [
                    "name": "broken",
                    "templates": [
                        ["name": "answers", "path": "machines/{{ machine.id }}/answers.cfg", "template": "preseed/broken.tmpl"]
                    ],
                ])
            let id = try await Self.createMachine(api, name: "broken-one", bootEnv: "broken")
            let response = try await boot.execute(uri: "/machines/\(id)/answers.cfg", method: .get, headers: [:], body: nil)
            let reason = String(buffer: response.body)
            #expect(response.status == .internalServerError)
            #expect(
                reason.hasPrefix("render_failed: machines/\(id)/answers.cfg (boot environment broken): preseed/broken.tmpl: "),
                "\(reason)")
            #expect(reason.contains(expected), "\(reason)")
            // It declares no iPXE script either: what the machine boots through is broken content, not a 404.
            let script = try await boot.execute(uri: "/boot/52-54-00-00-10-01.ipxe", method: .get, headers: [:], body: nil)
            #expect(script.status == .internalServerError)
            #expect(String(buffer: script.body).contains("broken: boot environment broken declares no template named ipxe"))
            let failures = try await Self.history(api, id, action: "renderFailed")
            #expect(
                failures.map { $0["detail"]?["path"]?.stringValue } == [
                    "machines/\(id)/answers.cfg", "boot/52-54-00-00-10-01.ipxe",
                ])
        }
    }

    @Test("undeclared paths and unknown machines are 404 in the JSON error shape")
    func notDeclared() async throws {
        try await Self.withPlanes { api, boot in
            let id = try await Self.createMachine(api, name: "disk-one", bootEnv: "local")
            for path in [
                "/machines/\(id)/preseed.cfg", "/machines/\(World.unknownID)/preseed.cfg", "/machines/not-an-id/preseed.cfg",
            ] {
                let response = try await boot.execute(uri: path, method: .get, headers: [:], body: nil)
                #expect(response.status == .notFound, "\(path)")
                #expect(
                    String(buffer: response.body).contains("\"code\":\"not_found\""), "\(path): \(String(buffer: response.body))")
            }
            #expect(try await Self.history(api, id, action: "renderFailed").isEmpty)
        }
    }

    @Test("render: any template with the machine's context; every wrong request is a 4xx naming its field")
    func renderEndpoint() async throws {
        try await Self.withPlanes { api, _ in
            _ = try await Self.createMachine(api, name: "node-render", bootEnv: "local")
            let script = try await api.get("/api/v1/machines/node-render/render", as: .operator)
            #expect(
                script.status == .ok && script.text.contains("echo Anvil: booting node-render from the local disk"), "\(script)")
            let template = try await api.get("/api/v1/machines/node-render/render?template=ipxe/local.ipxe.tmpl", as: .operator)
            #expect(template.text == script.text)

            try await api.get("/api/v1/machines/node-render/render?bootenv=nope", as: .operator).expectError(
                .notFound, "not_found", field: "bootenv")
            let undeclared = try await api.get("/api/v1/machines/node-render/render?file=preseed", as: .operator)
            undeclared.expectError(.notFound, "not_found", field: "file")
            #expect(undeclared.error?["message"]?.stringValue?.contains("it declares: ipxe") == true, "\(undeclared)")
            try await api.get("/api/v1/machines/node-render/render?file=ipxe&template=ipxe/local.ipxe.tmpl", as: .operator)
                .expectError(.badRequest, "invalid_query", field: "template")
            try await api.get("/api/v1/machines/node-render/render?bootURL=ftp://x", as: .operator)
                .expectError(.badRequest, "invalid_query", field: "bootURL")
            try await api.get("/api/v1/machines/nobody/render", as: .operator).expectError(.notFound, "not_found", field: "key")
            try await api.get("/api/v1/machines/node-render/render?template=../etc/passwd", as: .operator)
                .expectError(.unprocessableContent, "render_failed", field: "template")
            // The text carries a live machine token: a viewer may not read it.
            try await api.get("/api/v1/machines/node-render/render", as: .viewer).expectError(.forbidden, "forbidden")
        }
    }

    @Test(
        "rendered scripts are cached, yet follow every change: a new machine, its boot environment, a profile's param, the template file; each serve is still in the history"
    )
    func cacheFollowsChanges() async throws {
        let templates = try TemporaryDirectory(prefix: "anvil-templates")
        defer { templates.remove() }
        try FileManager.default.copyItem(atPath: AnvilServer.repositoryRoot + "/templates/ipxe", toPath: templates.file("ipxe"))
        let template = templates.file("ipxe/cached.ipxe.tmpl")
        try "#!ipxe\necho {{ bootenv.name }} {{ params.greeting|default:\"none\" }} v1\n".write(
            toFile: template, atomically: true, encoding: .utf8)
        try await Self.withPlanes(templates: templates.path) { api, boot in
            try await api.create(
                "bootenvs",
                [
                    "name": "cached",
                    "templates": [["name": "ipxe", "path": "boot/{{ machine.mac }}.ipxe", "template": "ipxe/cached.ipxe.tmpl"]],
                ])
            func script() async throws -> String {
                let response = try await boot.execute(uri: "/boot/52-54-00-00-10-01.ipxe", method: .get, headers: [:], body: nil)
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                return String(buffer: response.body)
            }
            // Unknown at first (discovery), twice, so the answer "no such machine" is cached too.
            for _ in 0..<2 { #expect(try await script().contains("Anvil: discovery for 52:54:00:00:10:01")) }

            let id = try await Self.createMachine(api, name: "cached-one", bootEnv: "cached")
            #expect(try await script() == "#!ipxe\necho cached none v1\n")
            #expect(try await script() == "#!ipxe\necho cached none v1\n")

            try await api.create("profiles", ["name": "greeters", "params": ["greeting": "hello"]])
            #expect(try await api.patch("/api/v1/machines/\(id)", ["profiles": ["greeters"]]).status == .ok)
            #expect(try await script() == "#!ipxe\necho cached hello v1\n")
            #expect(try await api.patch("/api/v1/profiles/greeters", ["params": ["greeting": "bonjour"]]).status == .ok)
            #expect(try await script() == "#!ipxe\necho cached bonjour v1\n")

            // An edited template is live within about a second (the files are checked that often).
            try "#!ipxe\necho {{ bootenv.name }} {{ params.greeting }} v2\n".write(
                toFile: template, atomically: true, encoding: .utf8)
            var latest = ""
            var editPolls = 0
            for _ in 0..<100 {
                latest = try await script()
                editPolls += 1
                if latest.hasSuffix("v2\n") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(latest == "#!ipxe\necho cached bonjour v2\n")

            #expect(try await api.patch("/api/v1/machines/\(id)", ["bootEnv": "local"]).status == .ok)
            #expect(try await script().contains("echo Anvil: booting cached-one from the local disk"))

            // Every answer to the known machine is in its history, cached or not.
            let served = try await Self.history(api, id, action: "fileServed")
            // v1 twice, hello, bonjour, then each poll after the edit.
            #expect(served.filter { $0["detail"]?["bootenv"] == "cached" }.count == 4 + editPolls)
            #expect(served.last?["detail"]?["bootenv"] == "local")
        }
    }
}
