import ApplianceTesting
import Foundation
import Testing

/// `anvil render` and `anvil bootenvs check` against a real `anvil serve` and real content: what the
/// CLI shows is byte for byte what a machine fetches from the boot plane.
@Suite("anvil render and bootenvs check", .serialized, .timeLimit(.minutes(5)))
struct RenderCLITests {
    @Test(
        "anvil render prints exactly the bytes the boot plane serves; the history lists the served file; a failed render exits 6")
    func renderMatchesBootPlane() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-render-cli")
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--tftp-listen", "off"])
        defer { server.stopBlocking() }

        for (name, params) in [("installer", #"{"root-password-hash":"$6$salt$hash"}"#), ("no-password", "{}")] {
            let created = try await server.cli([
                "machines", "create", "--set", "name=\(name)", "--set", "bootEnv=debian-12-install", "--set", "params=\(params)",
                "--set", "interfaces=[{\"mac\":\"52:54:00:bb:00:0\(name == "installer" ? 1 : 2)\",\"boot\":true}]",
            ])
            #expect(created.status == 0, "\(created.stderr)")
        }
        let shown = try await server.cli(["machines", "show", "installer", "--json"])
        let id = try #require(shown.stdout.firstMatch(of: /"id"\s*:\s*"([0-9a-f-]{36})"/)?.output.1, "\(shown.stdout)")

        for (bootPath, arguments) in [
            ("machines/\(id)/preseed.cfg", ["render", "debian-12-install", "--machine", "installer", "--file", "preseed"]),
            ("boot/52-54-00-bb-00-01.ipxe", ["render", "debian-12-install", "--machine", String(id)]),
        ] {
            // Rendered tokens are the same within a 5-minute window; take both again if it turned meanwhile.
            var served: BootFilesHTTPTests.Fetch
            var rendered: AnvilServer.CLIResult
            repeat {
                let window = Int(Date().timeIntervalSince1970 / 300)
                served = try await BootFilesHTTPTests.fetch("\(server.bootURL)/\(bootPath)", in: directory)
                rendered = try await server.cli(arguments + ["--boot-url", server.bootURL])
                if window == Int(Date().timeIntervalSince1970 / 300) { break }
            } while true
            #expect(served.status == 200, "\(bootPath): \(String(decoding: served.body, as: UTF8.self))")
            #expect(rendered.status == 0, "\(rendered.stderr)")
            #expect(Data(rendered.stdout.utf8) == served.body, "\(bootPath): anvil render differs from the boot plane")
        }
        let preseed = try await server.cli([
            "render", "debian-12-install", "--machine", "installer", "--file", "preseed", "--boot-url", server.bootURL,
        ])
        #expect(preseed.stdout.contains("d-i passwd/root-password-crypted password $6$salt$hash\n"), "\(preseed.stdout)")
        #expect(preseed.stdout.contains("'\(server.bootURL)/machines/\(id)/installed?token=m1.\(id)."), "\(preseed.stdout)")

        let task = try await server.cli(["render", "tasks/set-hostname.sh.tmpl", "--machine", "installer"])
        #expect(task.status == 0 && task.stdout.contains("installer"), "\(task.stdout)\(task.stderr)")

        let history = try await server.cli(["machines", "history", "installer", "--action", "fileServed"])
        #expect(history.status == 0, "\(history.stderr)")
        #expect(
            history.stdout.contains(
                "machines/\(id)/preseed.cfg  (boot environment debian-12-install, template preseed/debian-12.preseed.tmpl)"),
            "\(history.stdout)")
        #expect(
            history.stdout.contains(
                "boot/52-54-00-bb-00-01.ipxe  (boot environment debian-12-install, template ipxe/debian-installer.ipxe.tmpl)"),
            "\(history.stdout)")

        // A machine without the required param: the boot plane refuses with the reason, so does the CLI.
        let refused = try await BootFilesHTTPTests.fetch("\(server.bootURL)/boot/52-54-00-bb-00-02.ipxe", in: directory)
        #expect(refused.status == 500)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("required param 'root-password-hash' is not set"))
        let failed = try await server.cli(["render", "debian-12-install", "--machine", "no-password"])
        #expect(failed.status == 6, "\(failed.stdout)\(failed.stderr)")
        #expect(
            failed.stdout.isEmpty && failed.stderr.contains("root-password-hash") && failed.stderr.contains("[render_failed"),
            "\(failed.stderr)")
        let failures = try await server.cli(["machines", "history", "no-password", "--action", "renderFailed"])
        #expect(
            failures.stdout.contains("render_failed: boot/52-54-00-bb-00-02.ipxe (boot environment debian-12-install)"),
            "\(failures.stdout)")
    }

    @Test("bootenvs check passes the shipped content and exits 6 naming each problem of a broken copy")
    func bootEnvsCheck() async throws {
        let shipped = try await AnvilServer.run(
            AnvilServer.binary, ["bootenvs", "check", "--content-dir", AnvilServer.repositoryRoot])
        #expect(shipped.status == 0, "\(shipped.stdout)\(shipped.stderr)")
        #expect(
            shipped.stdout.contains("bootenvs/debian-12-install.yaml: debian-12-install (ipxe, preseed): ok"), "\(shipped.stdout)"
        )
        #expect(shipped.stdout.hasSuffix("7 boot environments, 0 problems\n"), "\(shipped.stdout)")

        let directory = try TemporaryDirectory(prefix: "anvil-bootenvs-check")
        defer { directory.remove() }
        for folder in ["bootenvs", "templates"] {
            try FileManager.default.copyItem(atPath: AnvilServer.repositoryRoot + "/" + folder, toPath: directory.file(folder))
        }
        try FileManager.default.removeItem(atPath: directory.file("templates/preseed/debian-12.preseed.tmpl"))
        let broken = try await AnvilServer.run(AnvilServer.binary, ["bootenvs", "check", "--content-dir", directory.path])
        #expect(broken.status == 6, "\(broken.stdout)\(broken.stderr)")
        #expect(
            broken.stdout.contains("bootenvs/debian-12-install.yaml: debian-12-install (ipxe, preseed): 1 problem"),
            "\(broken.stdout)")
        #expect(
            broken.stdout.contains(
                "  bootenvs/debian-12-install.yaml: templates.preseed (preseed/debian-12.preseed.tmpl): no such template"),
            "\(broken.stdout)")
        #expect(broken.stdout.hasSuffix("7 boot environments, 1 problem\n"), "\(broken.stdout)")
    }
}
