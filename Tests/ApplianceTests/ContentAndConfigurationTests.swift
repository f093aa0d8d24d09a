import Appliance
import ApplianceTesting
import BootEnvRendering
import Foundation
import ProvisioningModel
import Testing

@Suite("shipped content and configuration")
struct ContentAndConfigurationTests {
    @Test("every shipped bootenv, param, profile, task, stage and workflow loads without a problem")
    func shippedContentLoads() throws {
        let loaded = ContentLoader(root: URL(fileURLWithPath: AnvilServer.repositoryRoot)).load()
        #expect(loaded.problems.isEmpty, "\(loaded.problems)")
        let names = Set(loaded.objects.map { "\(type(of: $0.object).kind.rawValue)/\($0.object.key)" })
        for required in ["bootenv/discovery", "bootenv/local", "bootenv/debian-12-install", "profile/global", "workflow/discover"] {
            #expect(names.contains(required), "\(required) is shipped")
        }
        for object in loaded.objects { #expect(object.object.validate().isEmpty, "\(object.label)") }
    }

    @Test(
        "content problems name the file and line",
        arguments: [
            ("bootenvs/a.yaml", "name: a\narchitectures:\n  sparc: {}\n", "bootenvs/a.yaml:3:", "unknown architecture 'sparc'"),
            ("bootenvs/b.yaml", "name: b\ntemplates:\n  - name: x\n    path: p\n", "bootenvs/b.yaml:", "template"),
            ("bootenvs/c.yaml", "name: c\n  bad indent: [\n", "bootenvs/c.yaml:", "invalid YAML"),
            ("templates/content/d.yaml", "kind: gadget\nname: d\n", "templates/content/d.yaml:1:", "kind 'gadget'"),
            ("templates/content/e.yaml", "name: e\n", "templates/content/e.yaml:", "needs a 'kind'"),
            ("templates/content/f.yaml", "kind: workflow\nname: f\nstages: notalist\n", "templates/content/f.yaml:3:", "stages"),
        ])
    func contentProblemsAreLocated(file: String, text: String, location: String, reason: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file(file)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = ContentLoader(root: directory.url).load()
        #expect(loaded.objects.isEmpty)
        let problem = try #require(loaded.problems.first)
        #expect(problem.description.hasPrefix(location), "\(problem)")
        #expect(problem.description.contains(reason), "\(problem)")
    }

    @Test("a multi-document content file loads each document, and one bad document does not drop the others")
    func multiDocumentFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("templates/content"), withIntermediateDirectories: true)
        try "kind: profile\nname: one\n---\nkind: profile\nname: 'bad name'\n---\nkind: profile\nname: three\n"
            .write(toFile: directory.file("templates/content/p.yaml"), atomically: true, encoding: .utf8)
        let loaded = ContentLoader(root: directory.url).load()
        #expect(loaded.objects.map(\.object.key).sorted() == ["one", "three"])
        #expect(loaded.problems.count == 1)
    }

    @Test("configuration validation reports every problem with its setting")
    func configurationProblems() throws {
        var configuration = ApplianceConfiguration()
        configuration.logLevel = "loud"
        configuration.admin.tls = .files
        configuration.boot.listen = configuration.admin.listen
        configuration.power.concurrency = 0
        configuration.power.syncIntervalSeconds = 5
        let fields = Set(configuration.validate().map(\.field))
        #expect(fields == ["logLevel", "admin.certificate", "admin.privateKey", "boot.listen", "power.concurrency", "power.syncIntervalSeconds"])
        #expect(ApplianceConfiguration().validate().isEmpty, "the defaults are valid")
    }

    @Test("the example configuration in deploy/ is valid")
    func exampleConfiguration() throws {
        let configuration = try ApplianceConfiguration.load(path: AnvilServer.repositoryRoot + "/deploy/anvil.yaml")
        #expect(configuration.validate().isEmpty)
        #expect(configuration.dataDirectory == "/var/lib/anvil")
        #expect(configuration.boot.listen == ListenAddress(host: "0.0.0.0", port: 80))
        #expect(configuration.power.syncIntervalSeconds == 300 && configuration.power.concurrency == 16)
    }

    @Test("listen addresses", arguments: [("127.0.0.1:8443", true), ("[::1]:80", true), ("host:0", true), ("8443", false), (":80", false), ("h:70000", false)])
    func listenAddresses(text: String, valid: Bool) {
        #expect((ListenAddress(text) != nil) == valid)
    }
}
