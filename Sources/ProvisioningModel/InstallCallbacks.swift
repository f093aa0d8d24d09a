/// What an installer's "installed" callback does to a machine: it boots what comes after an install
/// (the param `boot-after-install`, `local` by default) and is `deployed`, reached by legal moves only.
public enum InstallCompletion {
    /// The param naming the boot environment a machine gets once its install finished.
    public static let nextBootEnvParam = "boot-after-install"
    /// When no layer of the attribute chain sets `boot-after-install` (and it has no definition).
    public static let defaultNextBootEnv = "local"

    public enum Refusal: Error, Sendable, Equatable {
        /// Failed, in maintenance or retired: an operator owns the machine, a callback must not move it.
        case notInstalling(MachineState)

        public var message: String {
            switch self {
            case .notInstalling(let state):
                "the machine is \(state.rawValue), not being installed; an install callback does not move it "
                    + "(an operator sets its state and boot environment)"
            }
        }
    }

    /// The versions the machine passes through to boot `next` and be deployed, one legal state move
    /// each; empty when it already is there (a retried callback changes nothing).
    public static func steps(for machine: Machine, bootingNext next: String) throws(Refusal) -> [Machine] {
        let path: [MachineState]
        switch machine.state {
        case .deployed: path = []
        case .deploying: path = [.deployed]
        // An install that ran without Anvil being told it started (a machine booted into an installer by
        // hand) still went through deploying.
        case .discovered, .ready, .reimageQueued, .wiping: path = [.deploying, .deployed]
        case .failed, .maintenance, .retired: throw .notInstalling(machine.state)
        }
        guard !path.isEmpty || machine.bootEnv != next else { return [] }
        var steps: [Machine] = []
        var current = machine
        for state in path {
            guard current.state.canMove(to: state) else { throw .notInstalling(machine.state) }
            current.state = state
            steps.append(current)
        }
        // The boot environment changes with the last step: until deployed, the machine still installs.
        current.bootEnv = next
        if steps.isEmpty { steps.append(current) } else { steps[steps.count - 1] = current }
        return steps
    }

    /// The `installed` note for a machine that went from `old` to `new`.
    public static func note(from old: Machine, to new: Machine) -> InventoryNote {
        InventoryNote(
            action: .installed, kind: .machine, key: old.key,
            detail: [
                "finished": .string(old.bootEnv), "bootEnv": .string(new.bootEnv),
                "previousState": .string(old.state.rawValue), "state": .string(new.state.rawValue),
                "message": .string("\(old.bootEnv) finished; the machine boots \(new.bootEnv) and is \(new.state.rawValue)"),
            ])
    }
}

/// A task's outcome as the agent reports it: `{"task": "<url>", "exitCode": N}`.
public struct TaskResult: Sendable, Hashable {
    public var task: String
    public var exitCode: Int

    public init(task: String, exitCode: Int) {
        self.task = task
        self.exitCode = exitCode
    }

    /// Longer than any task URL Anvil renders; bounds what lands in the history.
    public static let taskLengthLimit = 2048

    /// The result in `body`, or the first problem with it (the field and what is wrong).
    public static func parse(_ body: JSONValue) -> Result<TaskResult, ValidationProblem> {
        guard let members = body.objectValue else {
            return .failure(ValidationProblem(field: "", message: "the body must be a JSON object, not \(body.typeName)"))
        }
        if let unknown = members.keys.filter({ !["task", "exitCode"].contains($0) }).sorted().first {
            return .failure(ValidationProblem(field: unknown, message: "unknown field (known fields: exitCode, task)"))
        }
        guard let taskValue = members["task"] else { return .failure(ValidationProblem(field: "task", message: "is required")) }
        guard let task = taskValue.stringValue else {
            return .failure(
                ValidationProblem(field: "task", message: "must be a string (the task's URL), not \(taskValue.typeName)"))
        }
        guard !task.isEmpty, task.count <= taskLengthLimit, !task.contains(where: \.isNewline) else {
            return .failure(
                ValidationProblem(field: "task", message: "must be the task's URL: 1-\(taskLengthLimit) characters on one line"))
        }
        guard let codeValue = members["exitCode"] else {
            return .failure(ValidationProblem(field: "exitCode", message: "is required"))
        }
        guard case .integer(let code) = codeValue else {
            return .failure(ValidationProblem(field: "exitCode", message: "must be an integer, not \(codeValue.typeName)"))
        }
        guard (0...255).contains(code) else {
            return .failure(ValidationProblem(field: "exitCode", message: "must be 0-255 (a shell exit status), not \(code)"))
        }
        return .success(TaskResult(task: task, exitCode: Int(code)))
    }

    /// A failed task fails a machine that is being deployed or wiped (what the task was doing); a
    /// success changes nothing by itself (the image-deploy task calls `installed` for that).
    public func steps(for machine: Machine) -> [Machine] {
        guard exitCode != 0, [.deploying, .wiping].contains(machine.state), machine.state.canMove(to: .failed) else { return [] }
        var failed = machine
        failed.state = .failed
        return [failed]
    }

    /// The `taskFinished` note; `new` is the machine after `steps` (the same as `old` when they were empty).
    public func note(from old: Machine, to new: Machine) -> InventoryNote {
        var detail: [String: JSONValue] = [
            "task": .string(task), "exitCode": .integer(Int64(exitCode)), "state": .string(new.state.rawValue),
        ]
        if old.state != new.state {
            detail["previousState"] = .string(old.state.rawValue)
            detail["message"] = .string(
                "task \(task) exited with \(exitCode); the machine went from \(old.state.rawValue) to \(new.state.rawValue)")
        } else {
            detail["message"] = .string("task \(task) exited with \(exitCode)")
        }
        return InventoryNote(action: .taskFinished, kind: .machine, key: old.key, detail: .object(detail))
    }
}

/// A problem with a request's body is also what parsing one fails with.
extension ValidationProblem: Error {}
