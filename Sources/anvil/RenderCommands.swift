import ArgumentParser
import BootEnvRendering
import Foundation
import NIOCore
import NIOHTTP1

/// `anvil render`: what a machine gets from the boot plane, without booting it.
struct RenderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Render a boot environment's file, or any template, for a machine: exactly the bytes the boot plane serves it.",
        discussion: """
            TARGET is a boot environment name (renders the file it declares, --file, default ipxe) or a path \
            under templates/ (it has a '/', e.g. tasks/set-hostname.sh.tmpl; rendered with the machine's \
            boot environment). The boot plane fills in server.bootURL from the address the machine used: \
            give the same with --boot-url to compare (default: where the boot plane listens).
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "A boot environment name, or a template path under templates/.") var target: String
    @Option(name: .long, help: "Machine id or name.") var machine: String
    @Option(name: .long, help: "Which declared file of the boot environment (e.g. preseed; default ipxe).") var file: String?
    @Option(name: .long, help: "The boot plane's URL as the machine reaches it, e.g. http://10.0.0.1:8080.") var bootURL: String?

    func run() async throws {
        try await reportingErrors {
            var query: [String]
            if target.contains("/") {
                guard file == nil else {
                    throw ValidationError("--file names a declared file of a boot environment; \(target) is a template")
                }
                query = ["template=\(escape(target))"]
            } else {
                query = ["bootenv=\(escape(target))"] + (file.map { ["file=\(escape($0))"] } ?? [])
            }
            if let bootURL { query.append("bootURL=\(escape(bootURL))") }
            let reply = try await connection.client().request(
                .GET, "/api/v1/machines/\(escape(machine))/render?" + query.joined(separator: "&"))
            // The body as received: byte for byte what the machine gets, no newline added.
            FileHandle.standardOutput.write(Data(reply.body.readableBytesView))
        }
    }
}

/// `anvil bootenvs check`: the content directory's boot environments, checked without a server.
struct BootEnvsCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check bootenvs/*.yaml and their templates in a content directory (no server needed); exit 6 on any problem.",
        discussion: """
            Every file loads as the server loads it; each architecture names a kernel and initrds; listed \
            params are defined; every declared file renders (template present, syntax right, no unknown \
            variable or param) for a sample machine whose params all have a value.
            """)

    @Option(name: .long, help: "The directory holding bootenvs/ and templates/ (default: the current one, as for anvil serve).")
    var contentDir = "."

    func run() throws {
        let report = BootEnvCheck(root: URL(fileURLWithPath: contentDir)).run()
        func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
        for checked in report.checked {
            let count = report.problems.filter { $0.file == checked.source }.count
            let verdict = count == 0 ? "ok" : counted(count, "problem")
            print("\(checked.source): \(checked.name) (\(checked.files.joined(separator: ", "))): \(verdict)")
        }
        for problem in report.problems { print("  \(problem)") }
        print("\(counted(report.checked.count, "boot environment")), \(counted(report.problems.count, "problem"))")
        if report.checked.isEmpty {
            print("no bootenvs/*.yaml under \(contentDir)")
            throw ExitCode(6)
        }
        if !report.problems.isEmpty { throw ExitCode(6) }
    }
}
