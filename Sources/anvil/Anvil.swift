import ArgumentParser

@main
struct Anvil: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anvil",
        abstract: "Anvil bare-metal provisioning appliance.",
        discussion: """
            `anvil serve` runs the appliance. Every other command talks to its admin API; the endpoint,
            token and CA certificate come from flags, ANVIL_ENDPOINT / ANVIL_TOKEN / ANVIL_CA_CERT, or the
            data directory of a local server (--data-dir, ANVIL_DATA_DIR, default ./anvil-data).
            Exit codes: 0 ok, 1 other error, 2 usage, 3 not authorised, 4 not found, 5 conflict, 6 invalid input, 7 unreachable.
            """,
        version: "anvil 0.1.0",
        subcommands: [
            Serve.self, AdminTokenCommand.self, InfoCommand.self, EventsCommand.self, TokensCommand.self,
            ObjectCommand<MachinesKind>.self, ObjectCommand<SubnetsKind>.self, ObjectCommand<ReservationsKind>.self,
            ObjectCommand<BootEnvsKind>.self, ObjectCommand<ParamsKind>.self, ObjectCommand<ProfilesKind>.self,
            ObjectCommand<TasksKind>.self, ObjectCommand<StagesKind>.self, ObjectCommand<WorkflowsKind>.self,
            ObjectCommand<JobsKind>.self, ObjectCommand<LeasesKind>.self, RenderCommand.self, DHCPCommand.self, PowerCommand.self,
            BMCCredentialsCommand.self, LabCommand.self,
        ]
    )
}
