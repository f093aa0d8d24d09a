import ApplianceTesting
import BootEnvRendering
import Foundation
import NetworkPrimitives
import ProvisioningModel
import Testing

/// The image-deploy and wipe task scripts, rendered from the shipped content as the boot plane
/// renders them and run by busybox sh with only busybox applets on PATH (as in the discovery image),
/// against regular files standing in for disks and a real HTTP server on 127.0.0.1.
@Suite("Task scripts under busybox", .serialized, .timeLimit(.minutes(5)))
struct TaskScriptTests {
    static let machineID = ObjectID("0b1c5d2e-3f40-4a51-8b62-7c83d94ea5f6")!
    static let mac = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    static let content = ContentLoader(root: URL(fileURLWithPath: AnvilServer.repositoryRoot)).load()
    static let renderer = BootScriptRenderer(templatesDirectory: AnvilServer.repositoryRoot + "/templates")
    /// What the scripts may call: the discovery image has busybox and nothing else.
    static let applets = [
        "sh", "cat", "cut", "dd", "echo", "grep", "gunzip", "mkfifo", "mktemp", "printf", "rm", "sha256sum", "sleep", "stat",
        "sync",
        "tail", "tee", "timeout", "tr", "wget", "xz", "blockdev", "blkdiscard",
    ]

    /// `task` of `bootEnv` rendered for a fixture machine with these params over the shipped defaults.
    static func render(bootEnv name: String, params: [String: JSONValue], bootURL: String) throws -> String {
        let bootEnv = try #require(content.objects.compactMap { $0.object as? BootEnv }.first { $0.name == name })
        var values: [String: JSONValue] = [:]
        for definition in content.objects.compactMap({ $0.object as? Param }) {
            if let value = definition.default { values[definition.name] = value }
        }
        values.merge(params) { _, new in new }
        let machine = Machine(
            id: machineID, name: "node-07", state: .deploying, bootEnv: name, params: params,
            interfaces: [NetworkInterface(mac: mac, name: "eno1", boot: true)])
        var subject = RenderSubject(mac: mac, machine: machine, bootEnv: bootEnv, params: values, bootURL: bootURL)
        subject.token = "m1.test-token"
        let file = try #require(bootEnv.templates.first { $0.name == "task" })
        return try renderer.render(file, for: subject)
    }

    /// A directory of busybox links, the only PATH the scripts get.
    static func busyboxPath(in directory: TemporaryDirectory) throws -> String {
        let bin = directory.file("bin")
        if FileManager.default.fileExists(atPath: bin) { return bin }
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for applet in applets {
            try FileManager.default.createSymbolicLink(atPath: bin + "/" + applet, withDestinationPath: "/bin/busybox")
        }
        return bin
    }

    static func run(
        _ script: String, in directory: TemporaryDirectory, name: String, environment: [String: String] = [:]
    ) async throws -> AnvilServer.CLIResult {
        let path = directory.file(name)
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        return try await AnvilServer.run(
            "/usr/bin/timeout", ["60", "/bin/busybox", "sh", path],
            environment: environment.merging(["PATH": try busyboxPath(in: directory)]) { _, new in new })
    }

    static func randomBytes(_ count: Int, seed: UInt64) -> Data {
        var generator = SplitMix64(seed: seed)
        var data = Data(capacity: count + 8)
        while data.count < count { withUnsafeBytes(of: generator.next()) { data.append(contentsOf: $0) } }
        return data.prefix(count)
    }

    static func sha256(_ path: String) throws -> String {
        let output = ChildProcess.runBlocking(["/usr/bin/sha256sum", path])
        return try #require(output.split(separator: " ").first.map(String.init), "sha256sum \(path) printed nothing")
    }

    /// gzip or xz of `path` next to it (-k keeps the raw file).
    static func compress(_ tool: String, _ path: String) throws {
        _ = ChildProcess.runBlocking([tool, "-k", "-f", path])
        let output = path + (tool.hasSuffix("gzip") ? ".gz" : ".xz")
        try #require(FileManager.default.fileExists(atPath: output), "\(tool) did not write \(output)")
    }

    @Test("image-deploy writes raw, raw.gz and raw.xz images byte for byte, checks the sha256, calls back with the token")
    func imageDeploy() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-image-deploy")
        defer { directory.remove() }
        let images = directory.file("images")
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        // 3 MiB and a bit: several dd blocks and a short last one.
        let image = Self.randomBytes(3 << 20 + 4321, seed: 7)
        try image.write(to: URL(fileURLWithPath: images + "/node.raw"))
        try Self.compress("/bin/gzip", images + "/node.raw")
        try Self.compress("/usr/bin/xz", images + "/node.raw")
        let server = try await LocalHTTPServer(root: images, scratch: directory)
        defer { server.stop() }

        for (index, (file, format, checked)) in [
            ("node.raw", nil, false), ("node.raw.gz", nil, true), ("node.raw", "raw.xz" as String?, true),
        ]
        .enumerated() {
            let served = file == "node.raw" && format == "raw.xz" ? "node.raw.xz" : file
            let disk = directory.file("disk-\(index)")
            // A disk with old contents, larger than the image: a real disk keeps its tail, a file is truncated.
            try Self.randomBytes(1 << 20, seed: 99).write(to: URL(fileURLWithPath: disk))
            var params: [String: JSONValue] = ["image-url": .string("\(server.url)/\(served)"), "install-disk": .string(disk)]
            if let format { params["image-format"] = .string(format) }
            if checked { params["image-sha256"] = .string(try Self.sha256(images + "/" + served).uppercased()) }
            let script = try Self.render(bootEnv: "image-deploy", params: params, bootURL: server.url)
            let result = try await Self.run(script, in: directory, name: "image-deploy-\(index).sh")
            #expect(result.status == 0, "\(served): \(result.stdout)\(result.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: disk)) == image, "\(served): the disk differs from the image")
            #expect(
                result.stdout.contains(
                    "anvil-task image-deploy: writing \(server.url)/\(served) (\(format ?? (served.hasSuffix(".gz") ? "raw.gz" : "raw")))"
                ), "\(result.stdout)")
        }
        #expect(
            server.posts == Array(repeating: "/machines/\(Self.machineID)/installed?token=m1.test-token", count: 3),
            "\(server.posts)")

        // A wrong checksum: non-zero, says what it got and expected, and the disk cannot boot the image.
        let disk = directory.file("disk-bad")
        FileManager.default.createFile(atPath: disk, contents: nil)
        let wrong = String(repeating: "ab", count: 32)
        let bad = try Self.render(
            bootEnv: "image-deploy",
            params: [
                "image-url": .string("\(server.url)/node.raw.gz"), "install-disk": .string(disk), "image-sha256": .string(wrong),
            ],
            bootURL: server.url)
        let refused = try await Self.run(bad, in: directory, name: "image-deploy-bad.sh")
        #expect(refused.status == 1, "\(refused.stdout)\(refused.stderr)")
        let actual = try Self.sha256(images + "/node.raw.gz")
        #expect(
            refused.stderr.contains(
                "anvil-task image-deploy: error: sha256 mismatch for \(server.url)/node.raw.gz: got \(actual), expected \(wrong) (param image-sha256)"
            ),
            "\(refused.stderr)")
        let written = try Data(contentsOf: URL(fileURLWithPath: disk))
        #expect(written.prefix(1 << 20) == Data(count: 1 << 20) && written.dropFirst(1 << 20) == image.dropFirst(1 << 20))
        #expect(server.posts.count == 3, "a failed deploy must not call back: \(server.posts)")

        // qcow2, a missing image and a missing disk: each a clear error, nothing called back.
        for (params, message) in [
            (
                ["image-url": JSONValue.string("\(server.url)/node.qcow2"), "install-disk": .string(disk)],
                "image format qcow2 is not supported"
            ),
            (
                ["image-url": .string("\(server.url)/missing.raw"), "install-disk": .string(disk)],
                "downloading \(server.url)/missing.raw failed"
            ),
            (
                ["image-url": .string("\(server.url)/node.raw"), "install-disk": .string(directory.file("no-disk"))],
                "install disk \(directory.file("no-disk")) does not exist"
            ),
        ] {
            let result = try await Self.run(
                try Self.render(bootEnv: "image-deploy", params: params, bootURL: server.url), in: directory,
                name: "image-deploy-error.sh")
            #expect(
                result.status == 1 && result.stderr.contains("anvil-task image-deploy: error: \(message)"),
                "\(result.stdout)\(result.stderr)")
        }
        #expect(server.posts.count == 3, "\(server.posts)")
    }

    @Test(
        "wipe quick zeroes the first and last wipe-megabytes of a disk and leaves the rest; full zeroes it all; a missing disk fails"
    )
    func wipe() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-wipe")
        defer { directory.remove() }
        // Not a whole number of MiB: the tail is found in 512-byte sectors.
        let size = 5 << 20 + 512
        let original = Self.randomBytes(size, seed: 11)
        let disk = directory.file("disk")
        try original.write(to: URL(fileURLWithPath: disk))

        let quick = try await Self.run(
            try Self.render(
                bootEnv: "wipe", params: ["wipe-megabytes": 1, "wipe-disks": [.string(disk)]], bootURL: "http://127.0.0.1:9"),
            in: directory, name: "wipe-quick.sh")
        #expect(quick.status == 0, "\(quick.stdout)\(quick.stderr)")
        #expect(
            quick.stdout.contains(
                "anvil-task wipe-disks: wiping \(disk) (\(size) bytes, quick)\nanvil-task wipe-disks: wiped \(disk)\n"),
            "\(quick.stdout)")
        let wiped = try Data(contentsOf: URL(fileURLWithPath: disk))
        #expect(wiped.count == size)
        #expect(wiped.prefix(1 << 20) == Data(count: 1 << 20), "the first MiB is not zero")
        #expect(wiped.suffix(1 << 20) == Data(count: 1 << 20), "the last MiB is not zero")
        #expect(
            wiped.dropFirst(1 << 20).dropLast(1 << 20) == original.dropFirst(1 << 20).dropLast(1 << 20),
            "quick touched the middle")

        let full = try await Self.run(
            try Self.render(
                bootEnv: "wipe", params: ["wipe-mode": "full", "wipe-disks": [.string(disk)]], bootURL: "http://127.0.0.1:9"),
            in: directory, name: "wipe-full.sh")
        #expect(full.status == 0, "\(full.stdout)\(full.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: disk)) == Data(count: size), "full left non-zero bytes")

        let missing = try await Self.run(
            try Self.render(
                bootEnv: "wipe", params: ["wipe-disks": [.string(directory.file("gone"))]], bootURL: "http://127.0.0.1:9"),
            in: directory, name: "wipe-missing.sh")
        #expect(missing.status == 1, "\(missing.stdout)\(missing.stderr)")
        #expect(missing.stderr.contains("\(directory.file("gone")) does not exist"), "\(missing.stderr)")
        #expect(missing.stderr.contains("anvil-task wipe-disks: error: some disks were not wiped"), "\(missing.stderr)")
    }

    @Test(
        "through a real anvil serve: the image-deploy iPXE script names the task, the served task writes the image; Ubuntu's seed files are served"
    )
    func servedByTheBootPlane() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-task-boot-plane")
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start(extraArguments: ["--tftp-listen", "off"])
        defer { server.stopBlocking() }
        let images = directory.file("images")
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        let image = Self.randomBytes(2 << 20 + 77, seed: 3)
        try image.write(to: URL(fileURLWithPath: images + "/node.raw"))
        try Self.compress("/bin/gzip", images + "/node.raw")
        let files = try await LocalHTTPServer(root: images, scratch: directory)
        defer { files.stop() }
        // install-disk must look like a device (/dev/...): a regular file on /dev/shm does.
        let disk = "/dev/shm/anvil-task-disk-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: disk, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: disk) }
        let sha = try Self.sha256(images + "/node.raw.gz")

        for (name, mac, bootEnv, params) in [
            (
                "deploy", "52:54:00:cc:00:01", "image-deploy",
                #"{"image-url":"\#(files.url)/node.raw.gz","image-sha256":"\#(sha)","install-disk":"\#(disk)"}"#
            ),
            ("ubuntu", "52:54:00:cc:00:02", "ubuntu-24.04-install", #"{"root-password-hash":"$6$salt$hash"}"#),
        ] {
            let created = try await server.cli([
                "machines", "create", "--set", "name=\(name)", "--set", "bootEnv=\(bootEnv)", "--set", "params=\(params)",
                "--set", "interfaces=[{\"mac\":\"\(mac)\",\"boot\":true}]",
            ])
            #expect(created.status == 0, "\(created.stderr)")
        }
        func id(of name: String) async throws -> String {
            let shown = try await server.cli(["machines", "show", name, "--json"])
            return try #require(
                shown.stdout.firstMatch(of: /"id"\s*:\s*"([0-9a-f-]{36})"/).map { String($0.output.1) }, "\(shown.stdout)")
        }
        let deployID = try await id(of: "deploy")

        let ipxe = try await BootFilesHTTPTests.fetch("\(server.bootURL)/boot/52-54-00-cc-00-01.ipxe", in: directory)
        let script = String(decoding: ipxe.body, as: UTF8.self)
        #expect(ipxe.status == 200, "\(script)")
        #expect(script.contains(" anvil.token=m1.\(deployID)."), "\(script)")
        #expect(script.contains(" anvil.task=\(server.bootURL)/machines/\(deployID)/image-deploy.sh "), "\(script)")

        let task = try await BootFilesHTTPTests.fetch("\(server.bootURL)/machines/\(deployID)/image-deploy.sh", in: directory)
        #expect(task.status == 200, "\(String(decoding: task.body, as: UTF8.self))")
        let result = try await Self.run(String(decoding: task.body, as: UTF8.self), in: directory, name: "served-image-deploy.sh")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: disk)) == image, "the disk differs from the image")
        // The script's callback reached Anvil: the machine boots its disk now and is deployed.
        #expect(
            !result.stdout.contains("could not tell Anvil") && !result.stderr.contains("could not tell Anvil"), "\(result.stderr)"
        )
        let shown = try await server.cli(["machines", "show", "deploy", "--json"])
        let deployed = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any]
        #expect(deployed?["bootEnv"] as? String == "local" && deployed?["state"] as? String == "deployed", "\(shown.stdout)")
        let installed = try await server.cli(["machines", "history", "deploy", "--action", "installed"])
        #expect(
            installed.stdout.contains("    image-deploy finished; the machine boots local and is deployed\n"),
            "\(installed.stdout)")
        let next = try await BootFilesHTTPTests.fetch("\(server.bootURL)/boot/52-54-00-cc-00-01.ipxe", in: directory)
        let local = String(decoding: next.body, as: UTF8.self)
        #expect(next.status == 200 && local.contains("# Anvil: deploy boots from its local disk\n"), "\(local)")

        let ubuntuID = try await id(of: "ubuntu")
        for (file, prefix) in [
            ("user-data", "#cloud-config\n"), ("meta-data", "instance-id: \(ubuntuID)\n"), ("vendor-data", "#cloud-config\n"),
        ] {
            let served = try await BootFilesHTTPTests.fetch("\(server.bootURL)/machines/\(ubuntuID)/\(file)", in: directory)
            let text = String(decoding: served.body, as: UTF8.self)
            #expect(served.status == 200 && text.hasPrefix(prefix), "\(file): \(served.status) \(text)")
        }
    }

    @Test(
        "wipe with no disks named erases the local disks only: removable, read-only, mounted, optical and loop devices are left alone"
    )
    func wipeChoosesLocalDisks() async throws {
        let directory = try TemporaryDirectory(prefix: "anvil-wipe-choice")
        defer { directory.remove() }
        let root = directory.file("root")
        let size = 3 << 20
        // name: (removable, read-only); sdc's partition is mounted (the boot media), sr0 and loop0 are skipped by name.
        let devices: [(String, String, String)] = [
            ("sda", "0", "0"), ("sdb", "1", "0"), ("sdc", "0", "0"), ("sdd", "0", "1"), ("sr0", "1", "1"), ("loop0", "0", "0"),
        ]
        var originals: [String: Data] = [:]
        for (index, (name, removable, readOnly)) in devices.enumerated() {
            let block = root + "/sys/block/\(name)"
            try FileManager.default.createDirectory(atPath: block, withIntermediateDirectories: true)
            try "\(size / 512)\n".write(toFile: block + "/size", atomically: true, encoding: .utf8)
            try "\(removable)\n".write(toFile: block + "/removable", atomically: true, encoding: .utf8)
            try "\(readOnly)\n".write(toFile: block + "/ro", atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: root + "/dev", withIntermediateDirectories: true)
            originals[name] = Self.randomBytes(size, seed: UInt64(100 + index))
            try originals[name]!.write(to: URL(fileURLWithPath: root + "/dev/\(name)"))
        }
        try FileManager.default.createDirectory(atPath: root + "/proc", withIntermediateDirectories: true)
        try "proc /proc proc rw 0 0\n/dev/sdc1 /run/boot-media vfat ro 0 0\n".write(
            toFile: root + "/proc/mounts", atomically: true, encoding: .utf8)

        let result = try await Self.run(
            try Self.render(bootEnv: "wipe", params: ["wipe-megabytes": 1], bootURL: "http://127.0.0.1:9"), in: directory,
            name: "wipe-choice.sh", environment: ["ANVIL_SYSROOT": root])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        for line in [
            "anvil-task wipe-disks: skipping /dev/sdb: removable",
            "anvil-task wipe-disks: skipping /dev/sdc: mounted (boot media?)",
            "anvil-task wipe-disks: skipping /dev/sdd: read-only", "anvil-task wipe-disks: wiped \(root)/dev/sda",
        ] {
            #expect(result.stdout.contains(line + "\n"), "no '\(line)' in \(result.stdout)")
        }
        let sda = try Data(contentsOf: URL(fileURLWithPath: root + "/dev/sda"))
        #expect(sda.prefix(1 << 20) == Data(count: 1 << 20) && sda.suffix(1 << 20) == Data(count: 1 << 20))
        for (name, _, _) in devices where name != "sda" {
            #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/dev/\(name)")) == originals[name], "\(name) was touched")
        }
    }
}
