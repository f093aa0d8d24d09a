import Foundation

/// A unit of work the agent runs on a machine: templates rendered into scripts or files (the job's actions).
public struct TaskDefinition: InventoryObject, NamedObject {
    public static let kind = ObjectKind.task

    public var name: String
    public var description: String
    public var templates: [TaskTemplate]
    public var requiredParams: [String]
    public var optionalParams: [String]

    public init(
        name: String, description: String = "", templates: [TaskTemplate] = [], requiredParams: [String] = [],
        optionalParams: [String] = []
    ) {
        self.name = name
        self.description = description
        self.templates = templates
        self.requiredParams = requiredParams
        self.optionalParams = optionalParams
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, description, templates, requiredParams, optionalParams }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        templates = try c.decode(.templates, default: [])
        requiredParams = try c.decode(.requiredParams, default: [])
        optionalParams = try c.decode(.optionalParams, default: [])
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        report.check(!templates.isEmpty, "templates", "a task needs at least one template")
        for (index, template) in templates.enumerated() {
            report.checkName(template.name, field: "templates[\(index)].name")
            report.check(!template.template.isEmpty, "templates[\(index)].template", "must name a template file")
            if let path = template.path {
                report.check(path.hasPrefix("/"), "templates[\(index)].path", "must be an absolute path on the machine")
            }
        }
        report.checkNames(requiredParams, field: "requiredParams")
        report.checkNames(optionalParams, field: "optionalParams")
        return report.problems
    }
}

/// One action of a task: a script to run (no `path`) or a file to write at `path`.
public struct TaskTemplate: Codable, Sendable, Hashable {
    public var name: String
    public var template: String
    public var path: String?

    public init(name: String, template: String, path: String? = nil) {
        self.name = name
        self.template = template
        self.path = path
    }
}

/// A boot environment plus the tasks to run in it.
public struct Stage: InventoryObject, NamedObject {
    public static let kind = ObjectKind.stage

    public var name: String
    public var description: String
    public var bootEnv: String?
    public var tasks: [String]
    /// A profile whose params apply while the machine is in this stage.
    public var profile: String?

    public init(name: String, description: String = "", bootEnv: String? = nil, tasks: [String] = [], profile: String? = nil) {
        self.name = name
        self.description = description
        self.bootEnv = bootEnv
        self.tasks = tasks
        self.profile = profile
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, description, bootEnv, tasks, profile }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        bootEnv = try c.decodeIfPresent(String.self, forKey: .bootEnv)
        tasks = try c.decode(.tasks, default: [])
        profile = try c.decodeIfPresent(String.self, forKey: .profile)
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        report.checkNames(tasks, field: "tasks")
        return report.problems
    }

    public var references: [ObjectReference] {
        var references = tasks.enumerated().map { ObjectReference(field: "tasks[\($0.offset)]", kind: .task, key: $0.element) }
        if let bootEnv { references.append(ObjectReference(field: "bootEnv", kind: .bootenv, key: bootEnv)) }
        if let profile { references.append(ObjectReference(field: "profile", kind: .profile, key: profile)) }
        return references
    }
}

/// An ordered list of stages a machine goes through.
public struct Workflow: InventoryObject, NamedObject {
    public static let kind = ObjectKind.workflow

    public var name: String
    public var description: String
    public var stages: [String]
    /// The state a machine reaches when the last stage finishes: `ready` (a discovery or burn-in
    /// workflow; the machine is `discovered` meanwhile) or `deployed` (it is `deploying` meanwhile).
    public var outcome: MachineState

    public init(name: String, description: String = "", stages: [String], outcome: MachineState = .deployed) {
        self.name = name
        self.description = description
        self.stages = stages
        self.outcome = outcome
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, description, stages, outcome }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        stages = try c.decode(.stages, default: [])
        outcome = try c.decode(.outcome, default: .deployed)
    }

    /// The state a machine is in while the workflow runs.
    public var runningState: MachineState { outcome == .ready ? .discovered : .deploying }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        report.check(!stages.isEmpty, "stages", "a workflow needs at least one stage")
        report.checkNames(stages, field: "stages")
        report.check([.ready, .deployed].contains(outcome), "outcome", "must be ready or deployed, not \(outcome.rawValue)")
        return report.problems
    }

    public var references: [ObjectReference] {
        stages.enumerated().map { ObjectReference(field: "stages[\($0.offset)]", kind: .stage, key: $0.element) }
    }
}

public enum JobState: String, Codable, Sendable, CaseIterable {
    case created, running, finished, failed, incomplete
}

/// How the agent says a job ended, and so what happens next.
public enum JobExitState: String, Codable, Sendable, CaseIterable {
    case done, failed, reboot, poweroff, incomplete
}

/// One run of a task on a machine. Written by the workflow engine; read-only through the API.
public struct Job: InventoryObject {
    public static let kind = ObjectKind.job

    public var id: ObjectID
    public var machine: ObjectID
    public var task: String
    public var stage: String?
    public var workflow: String?
    public var state: JobState
    public var exitState: JobExitState?
    /// The exit status of the action that ended the job, as the agent reported it.
    public var exitCode: Int?
    /// Why the engine ended the job itself (the machine restarted while it ran…).
    public var message: String?
    /// The agent's boot the job was handed to (Linux's boot_id): a poll from another boot while the
    /// job runs means the machine restarted under it.
    public var boot: String?
    /// What the agent runs, rendered when the job was handed out (kept, so the history shows exactly what ran).
    public var actions: [JobAction]
    public var createdAt: Date
    public var startedAt: Date?
    public var endedAt: Date?

    public init(
        id: ObjectID = ObjectID(), machine: ObjectID, task: String, stage: String? = nil, workflow: String? = nil,
        state: JobState = .created, exitState: JobExitState? = nil, exitCode: Int? = nil, message: String? = nil,
        boot: String? = nil, actions: [JobAction] = [], createdAt: Date, startedAt: Date? = nil, endedAt: Date? = nil
    ) {
        self.id = id
        self.machine = machine
        self.task = task
        self.stage = stage
        self.workflow = workflow
        self.state = state
        self.exitState = exitState
        self.exitCode = exitCode
        self.message = message
        self.boot = boot
        self.actions = actions
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.endedAt = endedAt
    }

    public var key: String { id.description }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, machine, task, stage, workflow, state, exitState, exitCode, message, boot, actions, createdAt, startedAt, endedAt
    }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public static var filterFields: [String: FilterField] {
        ["machine": .equals(path: "$.machine"), "state": .equals(path: "$.state"), "task": .equals(path: "$.task")]
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(ObjectID.self, forKey: .id)
        machine = try c.decode(ObjectID.self, forKey: .machine)
        task = try c.decode(String.self, forKey: .task)
        stage = try c.decodeIfPresent(String.self, forKey: .stage)
        workflow = try c.decodeIfPresent(String.self, forKey: .workflow)
        state = try c.decode(.state, default: .created)
        exitState = try c.decodeIfPresent(JobExitState.self, forKey: .exitState)
        exitCode = try c.decodeIfPresent(Int.self, forKey: .exitCode)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        boot = try c.decodeIfPresent(String.self, forKey: .boot)
        actions = try c.decode(.actions, default: [])
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        startedAt = try c.decodeIfPresent(Date.self, forKey: .startedAt)
        endedAt = try c.decodeIfPresent(Date.self, forKey: .endedAt)
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(task, field: "task")
        if let startedAt, let endedAt { report.check(startedAt <= endedAt, "endedAt", "is before startedAt") }
        return report.problems
    }
}
