import ApplianceTesting
import Foundation
import Testing

/// The discovery image as built from Debian packages: small, and carrying the drivers a real server needs.
@Suite("Discovery image", .timeLimit(.minutes(20)))
struct DiscoveryImageTests {
    @Test("The initrd is under 64 MiB and holds busybox, /init, the server modules, modules.dep and the tools")
    func contents() async throws {
        try await DiscoveryImage.build()
        let initrd = DiscoveryImage.directory + "/initrd.gz"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: initrd)[.size] as? Int)
        #expect(size < 64 << 20, "initrd.gz is \(size) bytes")
        #expect(FileManager.default.fileExists(atPath: DiscoveryImage.directory + "/vmlinuz"))
        let listing = try await AnvilServer.run("/bin/sh", ["-c", "zcat '\(initrd)' | cpio -t --quiet"])
        #expect(listing.status == 0, "\(listing.stderr)")
        let files = Set(listing.stdout.split(separator: "\n").map(String.init))
        let moduleNames = Set(files.filter { $0.hasSuffix(".ko") }.map { ($0 as NSString).lastPathComponent.dropLast(3).replacingOccurrences(of: "-", with: "_") })
        for module in [
            "virtio_net", "virtio_blk", "virtio_pci", "virtio_scsi", "e1000", "e1000e", "igb", "ixgbe", "i40e", "ice", "mlx5_core",
            "bnxt_en", "tg3", "ahci", "nvme", "megaraid_sas", "mpt3sas", "sd_mod", "ipmi_si", "ipmi_devintf",
            // dependencies, resolved from modules.dep
            "libahci", "libata", "scsi_mod", "ipmi_msghandler", "mlxfw",
        ] {
            #expect(moduleNames.contains(module), "module \(module) missing")
        }
        for file in ["init", "bin/busybox", "sbin/udhcpc", "usr/share/udhcpc/default.script", "lib64/ld-linux-x86-64.so.2", "usr/sbin/dmidecode"] {
            #expect(files.contains(file), "\(file) missing")
        }
        #expect(files.contains { $0.hasSuffix("/modules.dep") })
    }

    @Test("anvil serve finds the built image by default (bootFiles.imageDirectory) over HTTP /files/ and TFTP")
    func served() async throws {
        try await DiscoveryImage.build()
        let directory = try TemporaryDirectory(prefix: "anvil-discovery-image")
        defer { directory.remove() }
        let server = AnvilServer(dataDirectory: directory.file("data"))
        try await server.start()
        defer { server.stopBlocking() }
        let expected = try #require(try FileManager.default.attributesOfItem(atPath: DiscoveryImage.directory + "/vmlinuz")[.size] as? Int)
        for url in ["\(server.bootURL)/files/discovery/amd64/vmlinuz", "\(server.tftpURL)/discovery/amd64/vmlinuz"] {
            let result = try await AnvilServer.run(
                "/usr/bin/curl", ["--silent", "--fail", "--max-time", "60", "--output", directory.file("vmlinuz"), "--write-out", "%{size_download}", url])
            #expect(result.status == 0 && result.stdout == "\(expected)", "\(url): \(result.status) \(result.stdout) \(result.stderr)")
        }
    }
}
