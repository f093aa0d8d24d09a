import Foundation

/// Where a machine is in its workflow. Kept in the machine's body, so it changes in the same
/// transaction as the machine's state and boot environment, and a crash never splits them.
public struct WorkflowProgress: Codable, Sendable, Hashable {
    /// The workflow this progress is through; when the machine's `workflow` names another, it starts over.
    public var workflow: String
    /// Index of the current stage in the workflow's `stages`.
    public var stage: Int
    /// Index of the current stage's next task.
    public var task: Int
    public var startedAt: Date
    /// The agent's boot that must end before the next job: the machine was told to boot again (into
    /// the next boot environment, or after a job asked for it). A poll from that boot is told again.
    public var rebootingFrom: String?
    /// When the last stage finished; nothing more is handed out.
    public var finishedAt: Date?

    public init(
        workflow: String, stage: Int = 0, task: Int = 0, startedAt: Date, rebootingFrom: String? = nil,
        finishedAt: Date? = nil
    ) {
        self.workflow = workflow
        self.stage = stage
        self.task = task
        self.startedAt = startedAt
        self.rebootingFrom = rebootingFrom
        self.finishedAt = finishedAt
    }

    /// `rebootingFrom` after an installer ran: no agent saw that boot, so any boot the agent reports is a new one.
    public static let installerBoot = "installer"
}

/// One rendered action of a job, exactly as the agent gets it: a script to run, or a file to write.
public struct JobAction: Codable, Sendable, Hashable {
    /// The task template's name.
    public var name: String
    /// Where the agent writes the file; nil for a script it runs.
    public var path: String?
    /// The rendered text.
    public var content: String

    public init(name: String, path: String? = nil, content: String) {
        self.name = name
        self.path = path
        self.content = content
    }
}

extension JobExitState {
    /// The exit state a job's script asks for with its exit status (Digital Rebar's convention):
    /// 0 done, 32 power off, 64 reboot, 128 not finished (run again after a reboot), any other failed.
    public init(exitStatus: Int) {
        switch exitStatus {
        case 0: self = .done
        case 32: self = .poweroff
        case 64: self = .reboot
        case 128: self = .incomplete
        default: self = .failed
        }
    }
}
