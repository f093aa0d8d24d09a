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

    public init(name: String, description: String = "", stages: [String]) {
        self.name = name
        self.description = description
        self.stages = stages
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, description, stages }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        stages = try c.decode(.stages, default: [])
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        report.check(!stages.isEmpty, "stages", "a workflow needs at least one stage")
        report.checkNames(stages, field: "stages")
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
    public var state: JobState
    public var exitState: JobExitState?
    public var createdAt: Date
    public var startedAt: Date?
    public var endedAt: Date?

    public init(
        id: ObjectID = ObjectID(), machine: ObjectID, task: String, stage: String? = nil, state: JobState = .created,
        exitState: JobExitState? = nil, createdAt: Date, startedAt: Date? = nil, endedAt: Date? = nil
    ) {
        self.id = id
        self.machine = machine
        self.task = task
        self.stage = stage
        self.state = state
        self.exitState = exitState
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.endedAt = endedAt
    }

    public var key: String { id.description }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, machine, task, stage, state, exitState, createdAt, startedAt, endedAt
    }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public static var filterFields: [String: FilterField] {
        ["machine": .equals(path: "$.machine"), "state": .equals(path: "$.state"), "task": .equals(path: "$.task")]
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(task, field: "task")
        if let startedAt, let endedAt { report.check(startedAt <= endedAt, "endedAt", "is before startedAt") }
        return report.problems
    }
}
