import Foundation
import ProvisioningModel
import Testing

@Suite("BootEnv sources: schema")
struct BootEnvSourceSchemaTests {
    static let sha = String(repeating: "ab", count: 32)
    static let otherSHA = String(repeating: "cd", count: 32)

    func problems(_ sources: [BootEnvSource]) -> [String] {
        BootEnv(name: "e", sources: sources).validate().map(\.description)
    }

    @Test("decodes file and extract sources; missing optional keys stay nil")
    func decodes() throws {
        let json = """
            {"name": "ubuntu", "sources": [
              {"architecture": "amd64", "url": "https://example.invalid/ubuntu.iso", "sha256": "\(Self.sha)",
               "extract": {"casper/vmlinuz": "ubuntu/amd64/vmlinuz", "casper/initrd": "ubuntu/amd64/initrd"}},
              {"url": "https://example.invalid/vmlinuz", "sha256": "\(Self.otherSHA)", "file": "rocky/vmlinuz"}]}
            """
        let env = try JSONDecoder().decode(BootEnv.self, from: Data(json.utf8))
        #expect(env.sources.count == 2)
        #expect(env.sources[0].extract == ["casper/vmlinuz": "ubuntu/amd64/vmlinuz", "casper/initrd": "ubuntu/amd64/initrd"])
        #expect(env.sources[0].file == nil && env.sources[1].extract == nil && env.sources[1].architecture == nil)
        #expect(env.sources[1].file == "rocky/vmlinuz")
        #expect(env.validate().isEmpty)
    }

    @Test("exactly one of file and extract")
    func exactlyOne() {
        #expect(
            problems([BootEnvSource(url: "https://x/a", sha256: Self.sha)]) == [
                "sources[0]: needs either 'file' (the download is the boot file) or 'extract' (archive members to boot files)"
            ])
        #expect(
            problems([BootEnvSource(url: "https://x/a", sha256: Self.sha, file: "a", extract: ["m": "b"])]) == [
                "sources[0]: has both 'file' and 'extract'; give exactly one"
            ])
    }

    @Test("an empty extract map is refused")
    func emptyExtract() {
        #expect(
            problems([BootEnvSource(url: "https://x/a", sha256: Self.sha, extract: [:])]) == [
                "sources[0].extract: must list at least one archive member"
            ])
    }

    @Test(
        "targets must be boot-file paths: no '..', not absolute", arguments: ["../etc/passwd", "/srv/vmlinuz", "a/../../b", ""])
    func badTargets(_ target: String) {
        let asFile = problems([BootEnvSource(url: "https://x/a", sha256: Self.sha, file: target)])
        #expect(asFile.count == 1 && asFile[0].hasPrefix("sources[0].file: '\(target)' is not a boot-file path"), "\(asFile)")
        let asMember = problems([BootEnvSource(url: "https://x/a", sha256: Self.sha, extract: ["casper/vmlinuz": target])])
        #expect(
            asMember.count == 1
                && asMember[0].hasPrefix("sources[0].extract.casper/vmlinuz: '\(target)' is not a boot-file path"), "\(asMember)")
    }

    @Test("no two sources (or members) write the same target, however it is spelled")
    func duplicateTargets() {
        #expect(
            problems([
                BootEnvSource(url: "https://x/a", sha256: Self.sha, file: "u/vmlinuz"),
                BootEnvSource(url: "https://x/b", sha256: Self.otherSHA, extract: ["casper/vmlinuz": "u//./vmlinuz"]),
            ]) == ["sources[1].extract.casper/vmlinuz: 'u/vmlinuz' is also written by sources[0]"])
        #expect(
            problems([BootEnvSource(url: "https://x/a", sha256: Self.sha, extract: ["a": "u/k", "b": "u/k"])]) == [
                "sources[0].extract.b: 'u/k' is written twice by this source"
            ])
    }

    @Test("an unknown architecture on a source is refused")
    func architecture() {
        #expect(
            problems([BootEnvSource(architecture: "x86_64", url: "https://x/a", sha256: Self.sha, file: "k")]) == [
                "sources[0].architecture: unknown architecture 'x86_64' (expected amd64 or arm64)"
            ])
    }

    @Test("archive member paths compare without leading ./ or /")
    func members() {
        #expect(BootEnvSource.normalizedMember("./casper/vmlinuz") == "casper/vmlinuz")
        #expect(BootEnvSource.normalizedMember("/casper//vmlinuz") == "casper/vmlinuz")
        #expect(BootEnvSource.normalizedMember("casper/./vmlinuz") == "casper/vmlinuz")
        #expect(BootEnvSource.normalizedMember("./") == nil)
    }
}

@Suite("boot media import plan")
struct BootMediaImportPlanTests {
    static let sha = String(repeating: "ab", count: 32)
    static let newSHA = String(repeating: "cd", count: 32)

    static let env = BootEnv(
        name: "ubuntu",
        sources: [
            BootEnvSource(
                url: "https://x/ubuntu.iso", sha256: sha, extract: ["casper/vmlinuz": "u/vmlinuz", "casper/initrd": "u/initrd"])
        ])
    static let manifest = BootMediaManifest(
        bootEnv: "ubuntu",
        sources: [
            .init(
                url: "https://x/ubuntu.iso", sha256: sha,
                files: [
                    .init(path: "u/initrd", size: 20, sha256: newSHA, member: "casper/initrd"),
                    .init(path: "u/vmlinuz", size: 10, sha256: newSHA),
                ])
        ])
    static let inPlace: [String: Int64] = ["u/vmlinuz": 10, "u/initrd": 20]

    func actions(
        _ env: BootEnv = Self.env, manifest: BootMediaManifest? = Self.manifest, existing: [String: Int64] = Self.inPlace,
        force: Bool = false
    )
        -> [BootMediaImportPlan.Action]
    {
        BootMediaImportPlan(bootEnv: env, manifest: manifest, existing: existing, force: force).steps.map(\.action)
    }

    @Test("skips a source whose targets exist and the manifest says came from this sha256")
    func skip() {
        #expect(actions() == [.skip])
        #expect(
            BootMediaImportPlan(bootEnv: Self.env, manifest: Self.manifest, existing: Self.inPlace, force: false).fetches.isEmpty)
    }

    @Test("--force fetches again")
    func force() { #expect(actions(force: true) == [.fetch(reason: "--force")]) }

    @Test("no manifest: not imported yet, even when the files exist")
    func noManifest() { #expect(actions(manifest: nil) == [.fetch(reason: "not imported yet")]) }

    @Test("a changed sha256 redoes the source")
    func changedSHA() {
        var env = Self.env
        env.sources[0].sha256 = Self.newSHA
        #expect(actions(env) == [.fetch(reason: "the source's sha256 changed")])
        env.sources[0].sha256 = Self.sha.uppercased()
        #expect(actions(env) == [.skip], "digests compare case-insensitively")
    }

    @Test("a missing or resized target, or a changed target list, redoes the source")
    func targetsChanged() {
        #expect(actions(existing: ["u/vmlinuz": 10]) == [.fetch(reason: "u/initrd is missing")])
        #expect(
            actions(existing: ["u/vmlinuz": 11, "u/initrd": 20]) == [
                .fetch(reason: "u/vmlinuz changed size (11 bytes, imported 10)")
            ])
        var env = Self.env
        env.sources[0].extract?["casper/memtest"] = "u/memtest"
        #expect(actions(env) == [.fetch(reason: "the source's targets changed")])
    }

    @Test("the manifest keeps one record per source and forgets sources no longer listed")
    func record() {
        var manifest = Self.manifest
        var env = Self.env
        env.sources[0].sha256 = Self.newSHA
        manifest.record(
            .init(
                url: "https://x/ubuntu.iso", sha256: Self.newSHA, files: [.init(path: "u/vmlinuz", size: 12, sha256: Self.sha)]),
            keeping: env.sources)
        #expect(manifest.sources.map(\.sha256) == [Self.newSHA])
    }
}
