import ArgumentParser
import Foundation
import Lab
import ProvisioningModel

/// `anvil lab up|status|console|down`: a virtual rack (QEMU machines with ipmi_sim BMCs around an
/// `anvil serve` in network namespaces of its own) in one command.
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "A virtual rack: QEMU machines with IPMI BMCs, PXE-booting from an Anvil of their own.",
        discussion: "Needs root. Nothing is linked to the host's network: reach the lab's Anvil with `ip netns exec`.",
        subcommands: [Up.self, Status.self, Console.self, Down.self])

    struct Location: ParsableArguments {
        @Option(help: "The lab's directory: state file, Anvil's data, consoles, BMC files.") var dir = "/tmp/anvil-lab"

        var directory: String { URL(fileURLWithPath: dir).standardizedFileURL.path }

        func state() throws -> VirtualRack.State {
            guard let state = try VirtualRack.State.load(from: directory) else {
                // Not a usage error: no help text, exit 1.
                FileHandle.standardError.write(
                    Data("error: no lab in \(directory) (start one with `anvil lab up --dir \(directory)`)\n".utf8))
                throw ExitCode(1)
            }
            return state
        }
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build the rack and power its machines on through Anvil; they PXE-boot and get discovered.")
        @OptionGroup var location: Location
        @Option(help: "How many machines.") var machines = 3
        @Option(help: "bios, uefi (native PXE), httpboot (UEFI HTTP Boot) or mixed.") var firmware = VirtualRack.Firmware.bios
        @Option(help: "Anvil's bootenvs/ and templates/, and the discovery image under .build-discovery/.")
        var contentDir = AnvilServer.repositoryRoot

        func validate() throws {
            // Each machine has a /32 on the BMC network and a MAC in one byte.
            guard (1...50).contains(machines) else { throw ValidationError("--machines must be between 1 and 50") }
        }

        func run() async throws {
            let state: VirtualRack.State
            do {
                state = try await VirtualRack.up(
                    machines: machines, firmware: firmware, directory: location.directory,
                    contentDirectory: URL(fileURLWithPath: contentDir).standardizedFileURL.path
                ) { print($0) }
            } catch let error as AnvilServerError {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
            let anvil = "ip netns exec \(state.serverNamespace) \(AnvilServer.binary)"
            print(
                """

                The lab is up (state: \(VirtualRack.State.file(in: state.directory))).
                Anvil's API, from its namespace:
                  \(anvil) machines list --data-dir \(state.dataDirectory)
                  \(anvil) power cycle vm1 --data-dir \(state.dataDirectory)
                Consoles: \(state.machines.map(\.serialLog).joined(separator: " "))
                  anvil lab console vm1 --dir \(state.directory)
                Watch discovery: anvil lab status --dir \(state.directory)
                Tear down:       anvil lab down --dir \(state.directory)
                """)
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The machines, their BMC power state and what Anvil knows of them.")
        @OptionGroup var location: Location
        @Flag(help: "Print a JSON array (one object per machine) instead of a table.") var json = false

        func run() async throws {
            let state = try location.state()
            let listed = try await state.cli(["machines", "list", "--json"])
            let known = (try? JSONDecoder().decode(JSONValue.self, from: Data(listed.stdout.utf8)))?.arrayValue ?? []
            let rows: [JSONValue] = state.machines.map { machine in
                let record = known.first { $0.objectValue?["name"]?.stringValue == machine.name }?.objectValue ?? [:]
                return .object([
                    "name": .string(machine.name), "mac": .string(machine.mac), "firmware": .string(machine.firmware.rawValue),
                    "bmc": .string(machine.bmcAddress), "power": .string(machine.bmcSaysOn ? "on" : "off"),
                    "qemu": machine.machinePID.map { .integer(Int64($0)) } ?? .null,
                    "state": record["state"] ?? .string(listed.status == 0 ? "unknown" : "anvil unreachable"),
                    "serial": record["facts"]?.objectValue?["systemSerial"] ?? .null,
                ])
            }
            if json { return printJSON(.array(rows)) }
            let columns: [(title: String, path: String)] = [
                ("MACHINE", "name"), ("MAC", "mac"), ("FIRMWARE", "firmware"), ("BMC", "bmc"), ("POWER", "power"),
                ("QEMU PID", "qemu"), ("ANVIL STATE", "state"), ("DISCOVERED SERIAL", "serial"),
            ]
            print(Table(columns: columns, rows: rows).render(), terminator: "")
        }
    }

    struct Console: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Follow a machine's serial console (Ctrl-C to stop).")
        @OptionGroup var location: Location
        @Argument(help: "Machine name, e.g. vm1.") var machine: String
        @Flag(help: "Print the console so far and exit.") var noFollow = false

        func run() async throws {
            let state = try location.state()
            guard let target = state.machines.first(where: { $0.name == machine }) else {
                throw ValidationError("no machine \(machine) in the lab (\(state.machines.map(\.name).joined(separator: ", ")))")
            }
            var offset: UInt64 = 0
            // Follows while the lab exists: `lab down` removes the file and ends the loop. QEMU truncates
            // the file when the machine restarts: start over from its beginning then.
            while FileManager.default.fileExists(atPath: target.serialLog) {
                if let handle = FileHandle(forReadingAtPath: target.serialLog) {
                    let size = (try? handle.seekToEnd()) ?? 0
                    if size < offset { offset = 0 }
                    try? handle.seek(toOffset: offset)
                    let data = (try? handle.readToEnd()) ?? Data()
                    offset += UInt64(data.count)
                    try? handle.close()
                    FileHandle.standardOutput.write(data)
                }
                if noFollow { return }
                try await Task.sleep(for: .milliseconds(300))
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop everything the lab started (by PID), delete its namespaces and taps, remove its directory.")
        @OptionGroup var location: Location

        func run() async throws {
            guard let state = try VirtualRack.State.load(from: location.directory) else {
                // Safe to run twice: the second time there is nothing left.
                print("no lab in \(location.directory): nothing to do")
                return
            }
            VirtualRack.down(state)
            print("lab in \(state.directory) is down: namespaces \(state.serverNamespace) \(state.rackNamespace) deleted")
        }
    }
}

extension VirtualRack.Firmware: ExpressibleByArgument {}
