import Foundation
import ProvisioningModel

/// The workflows, stages and tasks the engine walks, by name.
public struct WorkflowCatalog: Sendable {
    public var workflows: [String: Workflow]
    public var stages: [String: Stage]
    public var tasks: [String: TaskDefinition]

    public init(workflows: [Workflow], stages: [Stage], tasks: [TaskDefinition]) {
        self.workflows = Dictionary(workflows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.stages = Dictionary(stages.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.tasks = Dictionary(tasks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// What the agent is told to do next.
public enum AgentInstruction: Sendable, Equatable {
    /// Nothing to do now: poll again later.
    case wait
    /// Run this job: a new one, or the one this boot was already given (the agent's own record
    /// says whether it ran it, so no job runs twice).
    case run(Job)
    /// Boot again: the next boot environment is set (or a job asked for it).
    case reboot(reason: String)
    /// Power off (a job asked for it); the workflow goes on when the machine boots again.
    case poweroff(reason: String)
}

/// What one engine step writes, in one transaction, and what the agent is told.
public struct WorkflowStep: Sendable {
    /// The versions the machine passes through, each a legal state move from the one before.
    public var machine: [Machine] = []
    /// Jobs created or changed.
    public var jobs: [Job] = []
    public var notes: [InventoryNote] = []
    public var instruction: AgentInstruction = .wait

    public init() {}

    /// Whether there is anything to write.
    public var writes: Bool { !machine.isEmpty || !jobs.isEmpty || !notes.isEmpty }
}

/// Why the engine refused a request; adapters map these to 4xx answers.
public enum WorkflowRefusal: Error, Sendable, Equatable {
    case unknownWorkflow(String)
    /// An operator owns the machine (maintenance) or it is retired.
    case notAutomated(MachineState)
    /// The job already ended with another exit state.
    case jobEnded(job: String, exitState: JobExitState?)

    public var message: String {
        switch self {
        case .unknownWorkflow(let name): "no workflow '\(name)'"
        case .notAutomated(let state):
            "the machine is \(state.rawValue); take it out of \(state.rawValue) (set its state) before starting a workflow"
        case .jobEnded(let job, let exitState):
            "job \(job) already ended (\(exitState?.rawValue ?? "ended by Anvil")); a different exit state is refused"
        }
    }
}

/// Moves machines through their workflows: which job comes next, when the boot environment changes
/// and the machine boots again, what a job's exit state does, when a workflow is finished. Pure: the
/// caller reads the machine and its running job, applies the step in one transaction (the machine's
/// revision guards against a concurrent step) and tells the agent the step's instruction.
///
/// Progress lives on the machine (`WorkflowProgress`): stage index, task index, and the boot the
/// machine must leave before it gets more work. The agent names its boot (Linux's `boot_id`) in
/// every poll, which is how the engine knows a machine rebooted, and that a job it handed out was
/// cut short by a restart.
public struct WorkflowEngine: Sendable {
    public var catalog: WorkflowCatalog
    public var now: Date

    /// Who the history says made these steps.
    public static let actor = "workflow"

    public init(catalog: WorkflowCatalog, now: Date) {
        self.catalog = catalog
        self.now = now
    }

    /// Starts `name` on the machine from its first stage (over again, when it ran before). The machine
    /// becomes `discovered` (a workflow whose outcome is `ready`) or `deploying`.
    public func start(_ name: String, on machine: Machine) throws(WorkflowRefusal) -> WorkflowStep {
        guard let workflow = catalog.workflows[name] else { throw .unknownWorkflow(name) }
        guard ![.maintenance, .retired].contains(machine.state) else { throw .notAutomated(machine.state) }
        var walk = Walk(machine)
        walk.move(to: workflow.runningState)
        walk.current.workflow = name
        walk.current.progress = WorkflowProgress(workflow: name, startedAt: now)
        var step = WorkflowStep()
        step.notes.append(
            note(walk.current, "started", "workflow \(name) started (stages: \(workflow.stages.joined(separator: ", ")))"))
        step.machine = walk.versions
        return step
    }

    /// The agent on `boot` asks for work. `running` is the machine's job that has not ended, if any.
    public func poll(_ machine: Machine, running: Job?, boot: String) -> WorkflowStep {
        guard let name = machine.workflow, ![.failed, .maintenance, .retired].contains(machine.state) else {
            return WorkflowStep()
        }
        var step = WorkflowStep()
        var walk = Walk(machine)
        if machine.progress?.workflow != name {
            // A workflow named by hand (or by call-home) that has not started yet.
            do {
                step = try start(name, on: machine)
                walk.apply(step.machine)
            } catch {
                return failing(machine, job: nil, because: error.message)
            }
        }
        guard var progress = walk.current.progress, progress.finishedAt == nil else { return step }
        if let job = running {
            if job.boot == boot {
                step.instruction = .run(job)
                return step
            }
            return failing(
                walk.current, job: job, into: step,
                because: "the machine restarted while job \(job.id) (task \(job.task)) ran", versions: walk)
        }
        if let from = progress.rebootingFrom {
            if from == boot {
                step.instruction = .reboot(
                    reason: "this boot must end before the workflow goes on (\(walk.current.bootEnv) is set)")
                return step
            }
            progress.rebootingFrom = nil
        }
        return advance(walk, progress: progress, boot: boot, handOut: true, into: step)
    }

    /// The agent reports how `job` ended. A report for a job that already ended the same way changes
    /// nothing (a retried request); another exit state is refused.
    public func finish(
        _ job: Job, as exit: JobExitState, code: Int?, machine: Machine
    ) throws(WorkflowRefusal) -> WorkflowStep {
        guard job.state == .running else {
            guard job.exitState == exit else { throw .jobEnded(job: job.id.description, exitState: job.exitState) }
            return WorkflowStep()
        }
        var ended = job
        ended.state =
            switch exit {
            case .done, .reboot, .poweroff: .finished
            case .failed: .failed
            case .incomplete: .incomplete
            }
        ended.exitState = exit
        ended.exitCode = code
        ended.endedAt = now
        var step = WorkflowStep()
        step.jobs = [ended]
        let codeText = code.map { " (exit status \($0))" } ?? ""
        step.notes.append(
            note(machine, "jobFinished", "job \(job.id) (task \(job.task)) ended: \(exit.rawValue)\(codeText)", job: ended))
        // A job of a workflow the machine has since left (restarted by an operator) ends on its own.
        guard var progress = machine.progress, progress.workflow == job.workflow, progress.finishedAt == nil else {
            return step
        }
        switch exit {
        case .failed:
            return failing(machine, job: nil, into: step, because: "task \(job.task) failed\(codeText)")
        case .done:
            progress.task += 1
        case .reboot, .poweroff:
            progress.task += 1
            progress.rebootingFrom = job.boot
        case .incomplete:
            progress.rebootingFrom = job.boot
        }
        step = advance(Walk(machine), progress: progress, boot: job.boot ?? "", handOut: false, into: step)
        switch exit {
        case .reboot, .incomplete:
            if step.instruction == .wait { step.instruction = .reboot(reason: "task \(job.task) asked for a reboot") }
        case .poweroff:
            step.instruction = .poweroff(reason: "task \(job.task) asked to power off")
        case .done, .failed:
            break
        }
        return step
    }

    /// An installer said it finished (`installed` callback). When the machine's workflow is in the
    /// stage that boots that installer, the stage is done: the machine boots the next stage's boot
    /// environment (else `bootAfterInstall`), and when no stage is left it reaches the workflow's
    /// outcome. Nil when no workflow is installing it (the caller applies the plain callback rules).
    public func installed(_ machine: Machine, bootAfterInstall: String) -> WorkflowStep? {
        guard let name = machine.workflow, var progress = machine.progress, progress.workflow == name,
            progress.finishedAt == nil, let workflow = catalog.workflows[name], progress.stage < workflow.stages.count,
            let stage = catalog.stages[workflow.stages[progress.stage]], stage.bootEnv == machine.bootEnv,
            ![.failed, .maintenance, .retired].contains(machine.state)
        else { return nil }
        var walk = Walk(machine)
        walk.current.bootEnv = bootAfterInstall
        progress.stage += 1
        progress.task = 0
        progress.rebootingFrom = WorkflowProgress.installerBoot
        var step = WorkflowStep()
        step.notes.append(note(machine, "installed", "stage \(stage.name) finished: \(machine.bootEnv) installed the machine"))
        return advance(walk, progress: progress, boot: WorkflowProgress.installerBoot, handOut: false, into: step)
    }

    /// Ends the workflow as failed: the machine is `failed` (an operator decides what next), the job
    /// (if given) too. Used for what the engine finds itself and for what its caller could not do
    /// (a task's template did not render).
    public func failing(_ machine: Machine, job: Job?, because reason: String) -> WorkflowStep {
        failing(machine, job: job, into: WorkflowStep(), because: reason, versions: Walk(machine))
    }

    // MARK: Walking the stages

    /// Goes on from `progress`: past finished stages, into the next stage's boot environment (the
    /// machine boots again), to the next task (a new job when `handOut`), or to the end of the workflow.
    private func advance(
        _ walk: Walk, progress: WorkflowProgress, boot: String, handOut: Bool, into step: WorkflowStep
    ) -> WorkflowStep {
        var walk = walk
        var progress = progress
        var step = step
        let machine = walk.current
        guard let workflow = catalog.workflows[progress.workflow] else {
            return failing(
                machine, job: nil, into: step, because: "workflow \(progress.workflow) no longer exists", versions: walk)
        }
        while progress.stage < workflow.stages.count {
            let stageName = workflow.stages[progress.stage]
            guard let stage = catalog.stages[stageName] else {
                return failing(machine, job: nil, into: step, because: "stage \(stageName) no longer exists", versions: walk)
            }
            if let bootEnv = stage.bootEnv, bootEnv != walk.current.bootEnv {
                step.notes.append(
                    note(walk.current, "bootEnvChanged", "stage \(stageName) boots \(bootEnv) (was \(walk.current.bootEnv))"))
                walk.current.bootEnv = bootEnv
                if progress.rebootingFrom == nil {
                    progress.rebootingFrom = boot
                    step.instruction = .reboot(reason: "stage \(stageName) boots \(bootEnv)")
                }
                break
            }
            // Booted into another environment already (a job's reboot, an installer): wait for that boot.
            if progress.rebootingFrom != nil { break }
            if progress.task < stage.tasks.count {
                guard handOut else { break }
                let taskName = stage.tasks[progress.task]
                guard catalog.tasks[taskName] != nil else {
                    return failing(machine, job: nil, into: step, because: "task \(taskName) no longer exists", versions: walk)
                }
                let job = Job(
                    machine: machine.id, task: taskName, stage: stageName, workflow: workflow.name, state: .running, boot: boot,
                    createdAt: now, startedAt: now)
                step.jobs.append(job)
                step.notes.append(
                    note(walk.current, "jobStarted", "job \(job.id) (task \(taskName)) handed to the agent", job: job))
                step.instruction = .run(job)
                break
            }
            progress.stage += 1
            progress.task = 0
            if progress.stage < workflow.stages.count {
                step.notes.append(note(walk.current, "stageStarted", "stage \(workflow.stages[progress.stage]) started"))
            }
        }
        if progress.stage >= workflow.stages.count {
            progress.finishedAt = now
            progress.rebootingFrom = nil
            walk.current.progress = progress
            walk.move(to: workflow.outcome)
            step.notes.append(
                note(walk.current, "finished", "workflow \(workflow.name) finished; the machine is \(workflow.outcome.rawValue)"))
        }
        walk.current.progress = progress
        step.machine = walk.versions
        return step
    }

    private func failing(
        _ machine: Machine, job: Job?, into step: WorkflowStep, because reason: String, versions walk: Walk? = nil
    ) -> WorkflowStep {
        var step = step
        var walk = walk ?? Walk(machine)
        if let job {
            var failed = job
            failed.state = .failed
            failed.exitState = .failed
            failed.message = reason
            failed.endedAt = now
            step.jobs.append(failed)
        }
        walk.move(to: .failed)
        step.notes.append(note(walk.current, "failed", reason, job: job))
        step.machine = walk.versions
        step.instruction = .wait
        return step
    }

    private func note(_ machine: Machine, _ what: String, _ message: String, job: Job? = nil) -> InventoryNote {
        var detail: [String: JSONValue] = ["step": .string(what), "message": .string(message)]
        if let progress = machine.progress ?? machine.workflow.map({ WorkflowProgress(workflow: $0, startedAt: now) }) {
            detail["workflow"] = .string(progress.workflow)
            if let workflow = catalog.workflows[progress.workflow], progress.stage < workflow.stages.count {
                detail["stage"] = .string(workflow.stages[progress.stage])
            }
        }
        if let job {
            detail["job"] = .string(job.id.description)
            detail["task"] = .string(job.task)
            if let stage = job.stage { detail["stage"] = .string(stage) }
        }
        return InventoryNote(action: .workflowStep, kind: .machine, key: machine.key, detail: .object(detail))
    }
}

/// The versions a machine passes through in one step: a state move appends a version; other
/// changes (progress, boot environment) land on the latest one.
struct Walk {
    let original: Machine
    private var moved: [Machine] = []
    var current: Machine

    init(_ machine: Machine) {
        original = machine
        current = machine
    }

    /// Moves to `state` along legal moves (the shortest path), one version each.
    mutating func move(to state: MachineState) {
        for next in current.state.path(to: state) {
            current.state = next
            moved.append(current)
        }
    }

    /// Continues from versions another step already produced (only state moves need a version of their own).
    mutating func apply(_ versions: [Machine]) {
        for version in versions {
            if version.state != current.state { moved.append(version) }
            current = version
        }
    }

    /// The versions to write: each state move, the last carrying every other change; empty when
    /// nothing changed.
    var versions: [Machine] {
        var versions = moved
        if versions.isEmpty {
            if current != original { versions.append(current) }
        } else {
            versions[versions.count - 1] = current
        }
        return versions
    }
}
