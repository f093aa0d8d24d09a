import ApplianceTesting
import ProvisioningModel
import Testing

@Suite("Install completion and task results")
struct InstallCallbackLogicTests {
    @Test(
        "an install completion walks legal moves to deployed, switching the boot environment with the last",
        arguments: [
            (MachineState.deploying, [MachineState.deployed]),
            (.discovered, [.deploying, .deployed]),
            (.ready, [.deploying, .deployed]),
            (.wiping, [.deploying, .deployed]),
            (.reimageQueued, [.deploying, .deployed]),
        ])
    func completionPath(_ state: MachineState, _ expected: [MachineState]) throws {
        let machine = Fixtures.machine(1, state: state, bootEnv: "debian-12-install")
        let steps = try InstallCompletion.steps(for: machine, bootingNext: "local")
        #expect(steps.map(\.state) == expected)
        var previous = machine
        for step in steps {
            #expect(previous.state.canMove(to: step.state), "\(previous.state) -> \(step.state)")
            previous = step
        }
        #expect(steps.dropLast().allSatisfy { $0.bootEnv == "debian-12-install" })
        #expect(steps.last?.bootEnv == "local")
        #expect(steps.allSatisfy { $0.id == machine.id && $0.name == machine.name })
    }

    @Test("a deployed machine only changes its boot environment, and one already booting it does not change at all")
    func completionWhenDeployed() throws {
        let deployed = Fixtures.machine(1, state: .deployed, bootEnv: "debian-12-install")
        let steps = try InstallCompletion.steps(for: deployed, bootingNext: "local")
        #expect(steps.map(\.state) == [.deployed] && steps.map(\.bootEnv) == ["local"])
        #expect(try InstallCompletion.steps(for: steps[0], bootingNext: "local").isEmpty)
    }

    @Test("failed, maintenance and retired machines are refused", arguments: [MachineState.failed, .maintenance, .retired])
    func completionRefused(_ state: MachineState) {
        let machine = Fixtures.machine(1, state: state, bootEnv: "debian-12-install")
        #expect(throws: InstallCompletion.Refusal.notInstalling(state)) {
            try InstallCompletion.steps(for: machine, bootingNext: "local")
        }
    }

    @Test("the installed note says what finished, what boots next and the states")
    func installedNote() throws {
        let machine = Fixtures.machine(1, state: .ready, bootEnv: "debian-12-install")
        let last = try #require(try InstallCompletion.steps(for: machine, bootingNext: "local").last)
        let note = InstallCompletion.note(from: machine, to: last)
        #expect(note.action == .installed && note.kind == .machine && note.key == machine.key)
        #expect(
            note.detail
                == [
                    "finished": "debian-12-install", "bootEnv": "local", "previousState": "ready", "state": "deployed",
                    "message": "debian-12-install finished; the machine boots local and is deployed",
                ])
    }

    @Test("task results parse from their JSON; every bad field is named")
    func taskResultParsing() {
        #expect(
            TaskResult.parse(["task": "http://a/t.sh", "exitCode": 7]) == .success(TaskResult(task: "http://a/t.sh", exitCode: 7))
        )
        let cases: [(JSONValue, String)] = [
            (["exitCode": 0], "task"),
            (["task": 1, "exitCode": 0], "task"),
            (["task": "", "exitCode": 0], "task"),
            (["task": "a\nb", "exitCode": 0], "task"),
            (["task": .string(String(repeating: "a", count: 2049)), "exitCode": 0], "task"),
            (["task": "t"], "exitCode"),
            (["task": "t", "exitCode": 256], "exitCode"),
            (["task": "t", "exitCode": -1], "exitCode"),
            (["task": "t", "exitCode": 1.0], "exitCode"),
            (["task": "t", "exitCode": "0"], "exitCode"),
            (["task": "t", "exitCode": 0, "extra": true], "extra"),
            ([1, 2], ""),
        ]
        for (body, field) in cases {
            guard case .failure(let problem) = TaskResult.parse(body) else {
                Issue.record("\(body) was accepted")
                continue
            }
            #expect(problem.field == field, "\(body): \(problem)")
            #expect(!problem.message.isEmpty)
        }
    }

    @Test(
        "a failed task fails a deploying or wiping machine; a success, or a failure in another state, moves nothing",
        arguments: MachineState.allCases)
    func taskResultSteps(_ state: MachineState) {
        let machine = Fixtures.machine(1, state: state, bootEnv: "image-deploy")
        #expect(TaskResult(task: "t", exitCode: 0).steps(for: machine).isEmpty)
        let failed = TaskResult(task: "t", exitCode: 3).steps(for: machine)
        if state == .deploying || state == .wiping {
            #expect(failed.map(\.state) == [.failed] && failed.map(\.bootEnv) == ["image-deploy"])
        } else {
            #expect(failed.isEmpty)
        }
    }

    @Test("the taskFinished note has the task, the code and the state; a move says where from")
    func taskFinishedNote() {
        let machine = Fixtures.machine(1, state: .deploying, bootEnv: "image-deploy")
        let result = TaskResult(task: "http://a/t.sh", exitCode: 3)
        let note = result.note(from: machine, to: result.steps(for: machine)[0])
        #expect(note.action == .taskFinished && note.key == machine.key)
        #expect(
            note.detail
                == [
                    "task": "http://a/t.sh", "exitCode": 3, "state": "failed", "previousState": "deploying",
                    "message": "task http://a/t.sh exited with 3; the machine went from deploying to failed",
                ])
        let quiet = TaskResult(task: "http://a/t.sh", exitCode: 0).note(from: machine, to: machine)
        #expect(
            quiet.detail == [
                "task": "http://a/t.sh", "exitCode": 0, "state": "deploying", "message": "task http://a/t.sh exited with 0",
            ])
    }
}
