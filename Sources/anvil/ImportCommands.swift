import Appliance
import ArgumentParser
import BootEnvRendering
import BootMediaImport
import Foundation
import ProvisioningModel
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `anvil bootenvs import`: a boot environment's OS media, downloaded, verified and unpacked into the
/// boot-files directory. Works without a server; safe to run again (what is in place is skipped).
struct BootEnvsImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Download a boot environment's sources, verify their sha256 and place its boot files (no server needed).",
        discussion: """
            Reads <content-dir>/bootenvs/<name>.yaml. Each source is downloaded into <data-dir>/import-cache \
            (an interrupted download is resumed), checked against its sha256, then placed as a file or its \
            listed archive members extracted (ISO 9660, tar, tar.gz/xz, cpio) into the boot-files directory. \
            <boot-files>/.imports/<name>.json records what was placed; a source whose files are still in place \
            is skipped. Exit codes: 4 unknown boot environment, 6 invalid definition or no sources, \
            7 server unreachable, 1 any other failure (HTTP error, checksum mismatch, missing member, write error).
            """)

    @Argument(help: "The boot environment (bootenvs/<name>.yaml).") var name: String?
    @Flag(name: .long, help: "Import every boot environment that lists sources.") var all = false
    @Option(name: .long, help: "YAML configuration file (for dataDirectory and bootFiles.directory); flags override it.")
    var config: String?
    @Option(name: .long, help: "Directory for the download cache (default ./anvil-data, as for anvil serve).") var dataDir:
        String?
    @Option(name: .long, help: "Where boot files are placed (default <data-dir>/boot-files, as for anvil serve).")
    var bootFilesDir: String?
    @Option(name: .long, help: "The directory holding bootenvs/ (default: the current one).") var contentDir: String?
    @Flag(name: .long, help: "Download and place every source again, even when its files are in place.") var force = false

    func validate() throws {
        if all == (name != nil) { throw ValidationError("give a boot environment name or --all (not both)") }
    }

    func run() async throws {
        var configuration = ApplianceConfiguration()
        if let config {
            do {
                configuration = try ApplianceConfiguration.load(path: config)
            } catch {
                fail("\(error)", code: 6)
            }
        }
        if let dataDir { configuration.dataDirectory = dataDir }
        if let contentDir { configuration.contentDirectory = contentDir }
        if let bootFilesDir { configuration.bootFiles.directory = bootFilesDir }

        let loaded = ContentLoader(root: URL(fileURLWithPath: configuration.contentDirectory)).load()
        let bootEnvs = loaded.objects.compactMap { content in
            (content.object as? BootEnv).map { (env: $0, source: content.source) }
        }
        var chosen: [BootEnv] = []
        if let name {
            let files = ["bootenvs/\(name).yaml", "bootenvs/\(name).yml"]
            let problems = loaded.problems.filter { files.contains($0.file) }
            if !problems.isEmpty {
                fail("bootenvs/\(name) is invalid:\n" + problems.map { "  \($0)" }.joined(separator: "\n"), code: 6)
            }
            guard
                let found = bootEnvs.first(where: { files.contains($0.source) }) ?? bootEnvs.first(where: { $0.env.name == name })
            else {
                let known = bootEnvs.map(\.env.name).sorted().joined(separator: ", ")
                fail(
                    "unknown boot environment '\(name)': no bootenvs/\(name).yaml under \(configuration.contentDirectory)"
                        + (known.isEmpty ? "" : " (known: \(known))"), code: 4)
            }
            guard !found.env.sources.isEmpty else {
                fail("boot environment '\(found.env.name)' (\(found.source)) lists no sources to import", code: 6)
            }
            chosen = [found.env]
        } else {
            chosen = bootEnvs.map(\.env).filter { !$0.sources.isEmpty }.sorted { $0.name < $1.name }
            guard !chosen.isEmpty else {
                fail("no boot environment under \(configuration.contentDirectory) lists sources", code: 6)
            }
        }

        let importer = BootMediaImporter(
            bootFilesDirectory: configuration.bootFilesDirectory, cacheDirectory: configuration.dataDirectory + "/import-cache")
        for bootEnv in chosen {
            let printer = ImportProgressPrinter(bootEnv: bootEnv, interactive: isatty(STDOUT_FILENO) == 1)
            let report: BootMediaImporter.Report
            do {
                report = try await importer.run(bootEnv, force: force) { printer.handle($0) }
            } catch {
                printer.finishLine()
                let code: Int32 =
                    switch error {
                    case .download(.unreachable), .download(.timedOut): 7
                    case .noSources: 6
                    default: 1
                    }
                fail("\(bootEnv.name): \(error)", code: code)
            }
            let total = report.placed.reduce(Int64(0)) { $0 + $1.size }
            for file in report.placed {
                print("  placed \(file.target) (\(ImportProgressPrinter.size(file.size)))")
            }
            if report.placed.isEmpty {
                print(
                    "\(bootEnv.name): up to date (\(report.skipped.count) of \(bootEnv.sources.count) sources in place), nothing downloaded"
                )
            } else {
                print(
                    "\(bootEnv.name): \(report.placed.count) file\(report.placed.count == 1 ? "" : "s") placed (\(ImportProgressPrinter.size(total))) "
                        + "in \(configuration.bootFilesDirectory), \(ImportProgressPrinter.size(report.transferred)) downloaded")
            }
        }
    }

    private func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        Foundation.exit(code)
    }
}

/// Progress of one import: a redrawn bar on a terminal, one line per 10% otherwise (logs, CI).
final class ImportProgressPrinter: Sendable {
    private struct State {
        var decile = -1
        var barShown = false
        var start = ContinuousClock.now
    }

    private let bootEnv: BootEnv
    private let interactive: Bool
    private let state = Mutex(State())

    init(bootEnv: BootEnv, interactive: Bool) {
        self.bootEnv = bootEnv
        self.interactive = interactive
    }

    static func size(_ bytes: Int64) -> String {
        bytes < 1 << 20 ? "\(bytes) bytes" : String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }

    func handle(_ event: BootMediaImporter.Event) {
        switch event {
        case .skipped(let index, let source):
            say("\(bootEnv.name): source \(index + 1): \(source.url): in place (sha256 \(source.sha256.prefix(12))…), skipped")
        case .fetching(let index, let source, let reason):
            state.withLock { $0 = State() }
            say("\(bootEnv.name): source \(index + 1): \(source.url) (\(reason))")
        case .cached(_, let path): say("  verified download already in the cache: \(path)")
        case .resuming(_, let bytes): say("  resuming an interrupted download at \(Self.size(bytes))")
        case .progress(_, let progress): show(progress)
        case .downloaded(_, let result):
            finishLine()
            say(
                "  downloaded \(Self.size(result.size))\(result.resumedFrom > 0 ? " (\(Self.size(result.resumedFrom)) resumed)" : ""); verifying sha256"
            )
        case .placed: break
        }
    }

    func finishLine() {
        let shown = state.withLock { state in
            defer { state.barShown = false }
            return state.barShown
        }
        if shown { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }

    private func say(_ line: String) {
        finishLine()
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    private func show(_ progress: DownloadProgress) {
        let rate = String(format: "%.1f MiB/s", progress.bytesPerSecond / 1_048_576)
        guard let total = progress.bytesTotal, total > 0 else {
            if interactive { redraw("  \(Self.size(progress.bytesDone))  \(rate)") }
            return
        }
        let fraction = min(1, Double(progress.bytesDone) / Double(total))
        let percent = Int(fraction * 100)
        if interactive {
            let width = 30
            let filled = Int(fraction * Double(width))
            let remaining = progress.bytesPerSecond > 0 ? Double(total - progress.bytesDone) / progress.bytesPerSecond : nil
            let eta = remaining.map { String(format: "ETA %d:%02d", Int($0) / 60, Int($0) % 60) } ?? "ETA --:--"
            redraw(
                "  [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(percent)%  "
                    + String(format: "%.1f/%.1f MiB  ", Double(progress.bytesDone) / 1_048_576, Double(total) / 1_048_576)
                    + "\(rate)  \(eta)")
        } else {
            let decile = percent / 10
            let due = state.withLock { state in
                guard decile > state.decile else { return false }
                state.decile = decile
                return true
            }
            if due {
                let line = String(
                    format: "  %3d%%  %.1f of %.1f MiB  ", percent, Double(progress.bytesDone) / 1_048_576,
                    Double(total) / 1_048_576)
                FileHandle.standardOutput.write(Data((line + rate + "\n").utf8))
            }
        }
    }

    private func redraw(_ line: String) {
        state.withLock { $0.barShown = true }
        FileHandle.standardOutput.write(Data("\r\u{1B}[K\(line)".utf8))
    }
}
