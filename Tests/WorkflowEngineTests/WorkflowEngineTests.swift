import Foundation
import ProvisioningModel
import Testing

@testable import WorkflowEngine

/// The engine's decisions on plain values: which job comes next, when the machine reboots, what
/// exit states do, and that a job is never handed to two boots.
@Suite struct WorkflowEngineTests {
    static let catalog = WorkflowCatalog(
        workflows: [
            Workflow(name: "discover", stages: ["discover"], outcome: .ready),
            Workflow(name: "deploy", stages: ["wipe", "install"]),
            Workflow(name: "burn-in", stages: ["discover", "burn"], outcome: .ready),
            Workflow(name: "broken", stages: ["missing"]),
        ],
        stages: [
            Stage(name: "discover", bootEnv: "discovery"),
            Stage(name: "wipe", bootEnv: "discovery", tasks: ["wipe-disks"]),
            Stage(name: "install", bootEnv: "debian-12-install"),
            Stage(name: "burn", tasks: ["stress", "firmware"]),
        ],
        tasks: [
            TaskDefinition(name: "wipe-disks", templates: [TaskTemplate(name: "wipe", template: "tasks/wipe.sh.tmpl")]),
            TaskDefinition(name: "stress", templates: [TaskTemplate(name: "stress", template: "tasks/stress.sh.tmpl")]),
            TaskDefinition(name: "firmware", templates: [TaskTemplate(name: "fw", template: "tasks/fw.sh.tmpl")]),
        ])
    let engine = WorkflowEngine(catalog: Self.catalog, now: Date(timeIntervalSince1970: 1_800_000_000))

    func machine(_ state: MachineState = .ready, workflow: String? = nil) -> Machine {
        Machine(name: "m1", state: state, bootEnv: "discovery", workflow: workflow)
    }

    /// Applies a step as the store would: the last version is the machine now.
    func after(_ step: WorkflowStep, _ machine: Machine) -> Machine { step.machine.last ?? machine }

    func job(_ step: WorkflowStep) throws -> Job {
        guard case .run(let job) = step.instruction else {
            Issue.record("expected a job, got \(step.instruction)")
            throw CancellationError()
        }
        return job
    }

    @Test func discoveryWorkflowMakesADiscoveredMachineReadyAtItsFirstPoll() {
        let discovered = machine(.discovered, workflow: "discover")
        let step = engine.poll(discovered, running: nil, boot: "boot-a")
        #expect(step.instruction == .wait)
        #expect(step.jobs.isEmpty)
        let ready = after(step, discovered)
        #expect(ready.state == .ready)
        #expect(ready.progress?.finishedAt == engine.now)
        #expect(step.machine.map(\.state) == [.ready])
        #expect(step.notes.compactMap { $0.detail?.objectValue?["step"]?.stringValue } == ["started", "finished"])
        // Polls after that change nothing.
        #expect(!engine.poll(ready, running: nil, boot: "boot-a").writes)
    }

    @Test func deploymentRunsTasksSwitchesBootEnvironmentAndEndsWithTheInstallerCallback() throws {
        var m = machine(.ready)
        let started = try engine.start("deploy", on: m)
        m = after(started, m)
        #expect(m.state == .deploying)

        let first = engine.poll(m, running: nil, boot: "boot-a")
        m = after(first, m)
        let wipe = try job(first)
        #expect(wipe.task == "wipe-disks" && wipe.stage == "wipe" && wipe.state == .running && wipe.boot == "boot-a")
        #expect(first.jobs == [wipe])

        // The same boot asking again gets the same job back, not a second one.
        let again = engine.poll(m, running: wipe, boot: "boot-a")
        #expect(try job(again).id == wipe.id)
        #expect(again.jobs.isEmpty && again.machine.isEmpty)

        let done = try engine.finish(wipe, as: .done, code: 0, machine: m)
        m = after(done, m)
        #expect(done.jobs.first?.state == .finished)
        #expect(m.bootEnv == "debian-12-install")
        #expect(done.instruction == .reboot(reason: "stage install boots debian-12-install"))
        #expect(m.progress?.rebootingFrom == "boot-a")

        // A poll from the boot that should have ended is told again.
        let stale = engine.poll(m, running: nil, boot: "boot-a")
        guard case .reboot = stale.instruction else {
            Issue.record("expected reboot, got \(stale.instruction)")
            return
        }

        let installed = try #require(engine.installed(m, bootAfterInstall: "local"))
        m = after(installed, m)
        #expect(m.state == .deployed)
        #expect(m.bootEnv == "local")
        #expect(m.progress?.finishedAt != nil)
    }

    @Test func aRestartWhileAJobRunsFailsTheJobAndTheMachine() throws {
        var m = try after(engine.start("deploy", on: machine()), machine())
        let step = engine.poll(m, running: nil, boot: "boot-a")
        m = after(step, m)
        let wipe = try job(step)
        let restarted = engine.poll(m, running: wipe, boot: "boot-b")
        #expect(restarted.instruction == .wait)
        #expect(restarted.jobs.first?.state == .failed)
        #expect(restarted.jobs.first?.message?.contains("restarted") == true)
        #expect(after(restarted, m).state == .failed)
        // A failed machine gets nothing more.
        #expect(!engine.poll(after(restarted, m), running: nil, boot: "boot-b").writes)
    }

    @Test func rebootAndIncompleteExitStatesGoOnAfterTheNextBoot() throws {
        var m = machine(.ready, workflow: "burn-in")
        var step = engine.poll(m, running: nil, boot: "boot-a")
        m = after(step, m)
        let stress = try job(step)
        #expect(stress.task == "stress")

        // Not finished: run again after a reboot, as a new job.
        step = try engine.finish(stress, as: .incomplete, code: 128, machine: m)
        m = after(step, m)
        #expect(step.instruction == .reboot(reason: "task stress asked for a reboot"))
        #expect(step.jobs.first?.state == .incomplete)
        step = engine.poll(m, running: nil, boot: "boot-b")
        m = after(step, m)
        let stressAgain = try job(step)
        #expect(stressAgain.task == "stress" && stressAgain.id != stress.id && stressAgain.boot == "boot-b")

        // Done, then reboot: the next task waits for the next boot.
        step = try engine.finish(stressAgain, as: .reboot, code: 64, machine: m)
        m = after(step, m)
        guard case .reboot = step.instruction else {
            Issue.record("expected reboot, got \(step.instruction)")
            return
        }
        step = engine.poll(m, running: nil, boot: "boot-c")
        m = after(step, m)
        let firmware = try job(step)
        #expect(firmware.task == "firmware")

        step = try engine.finish(firmware, as: .done, code: 0, machine: m)
        m = after(step, m)
        #expect(m.state == .ready)
        #expect(m.progress?.finishedAt != nil)
    }

    @Test func aFailedTaskFailsTheMachineAndAReportIsIdempotent() throws {
        var m = try after(engine.start("deploy", on: machine()), machine())
        let step = engine.poll(m, running: nil, boot: "boot-a")
        m = after(step, m)
        let wipe = try job(step)
        let failed = try engine.finish(wipe, as: .failed, code: 3, machine: m)
        #expect(after(failed, m).state == .failed)
        let ended = try #require(failed.jobs.first)
        #expect(ended.state == .failed && ended.exitCode == 3)
        // The agent repeats its report (the answer was lost): nothing more happens.
        #expect(!(try engine.finish(ended, as: .failed, code: 3, machine: after(failed, m))).writes)
        #expect(throws: WorkflowRefusal.self) { try engine.finish(ended, as: .done, code: 0, machine: after(failed, m)) }
    }

    @Test func aMissingStageFailsTheWorkflowWithTheReason() {
        let m = machine(.ready, workflow: "broken")
        let step = engine.poll(m, running: nil, boot: "boot-a")
        #expect(after(step, m).state == .failed)
        #expect(step.notes.last?.detail?.objectValue?["message"]?.stringValue == "stage missing no longer exists")
    }

    @Test func startingIsRefusedForUnknownWorkflowsAndMachinesInMaintenance() {
        #expect(throws: WorkflowRefusal.unknownWorkflow("nope")) { try engine.start("nope", on: machine()) }
        #expect(throws: WorkflowRefusal.notAutomated(.maintenance)) { try engine.start("deploy", on: machine(.maintenance)) }
    }

    @Test func restartingADeployedMachineGoesThroughLegalMoves() throws {
        let step = try engine.start("deploy", on: machine(.deployed))
        #expect(step.machine.map(\.state) == [.reimageQueued, .deploying])
        #expect(MachineState.failed.path(to: .deploying) == [.deploying])
        #expect(MachineState.ready.path(to: .ready) == [])
    }
}
