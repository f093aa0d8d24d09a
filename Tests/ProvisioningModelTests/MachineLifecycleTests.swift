import ApplianceTesting
import ProvisioningModel
import Testing

@Suite("Machine lifecycle")
struct MachineLifecycleTests {
    @Test("canMove(to:) is exactly 'same state or listed in allowedNextStates'",
          arguments: MachineState.allCases, MachineState.allCases)
    func canMoveMatchesTable(_ from: MachineState, _ to: MachineState) {
        #expect(from.canMove(to: to) == (from == to || from.allowedNextStates.contains(to)))
    }

    @Test("no state lists itself as a next state", arguments: MachineState.allCases)
    func noSelfLoopsInTable(_ state: MachineState) {
        #expect(!state.allowedNextStates.contains(state))
    }

    @Test("every state can be taken into maintenance", arguments: MachineState.allCases)
    func maintenanceIsAlwaysReachable(_ state: MachineState) {
        #expect(state.canMove(to: .maintenance))
    }

    @Test("legal moves", arguments: [
        (MachineState.discovered, MachineState.ready),
        (.ready, .deploying),
        (.deploying, .deployed),
        (.deployed, .reimageQueued),
        (.reimageQueued, .wiping),
        (.wiping, .deploying),
        (.deploying, .failed),
        (.failed, .ready),
        (.deployed, .retired),
        (.retired, .maintenance),
        (.maintenance, .ready),
    ])
    func legalMove(_ from: MachineState, _ to: MachineState) {
        #expect(from.canMove(to: to))
    }

    @Test("illegal moves", arguments: [
        (MachineState.retired, MachineState.deployed),
        (.retired, .ready),
        (.retired, .discovered),
        (.discovered, .deployed),
        (.ready, .deployed),
        (.deployed, .deploying),
        (.deployed, .ready),
        (.deploying, .ready),
        (.wiping, .deployed),
        (.wiping, .ready),
    ])
    func illegalMove(_ from: MachineState, _ to: MachineState) {
        #expect(!from.canMove(to: to))
    }

    @Test("staying in the same state is always allowed", arguments: MachineState.allCases)
    func sameState(_ state: MachineState) {
        #expect(state.canMove(to: state))
    }

    @Test("validateChange reports field 'state' for an illegal move")
    func illegalChangeReported() {
        let old = Fixtures.machine(state: .retired)
        var new = old
        new.state = .deployed
        let problems = new.validateChange(from: old)
        #expect(problems.map(\.field) == ["state"])
        #expect(problems.first?.message.contains("retired") == true)
    }

    @Test("validateChange accepts a legal move and an unchanged state")
    func legalChangeAccepted() {
        let old = Fixtures.machine(state: .deployed)
        var new = old
        new.state = .reimageQueued
        #expect(new.validateChange(from: old).isEmpty)
        #expect(old.validateChange(from: old).isEmpty)
    }
}
