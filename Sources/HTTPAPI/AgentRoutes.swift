import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import ProvisioningModel
import Synchronization

/// The machine agent's endpoints, on the boot plane (plain HTTP: the discovery image has no TLS).
/// - `GET /agent/anvil-agent.sh`: the agent itself, served as the file in `templates/agent/`.
/// - `POST /api/v1/machines/callhome`: hardware facts in, the machine and its token out.
///   Without a token only an unknown machine may call home, and those calls are rate-limited.
/// - `GET /api/v1/machines/{id}/next-job`: the agent's poll; needs that machine's token.
/// - `POST /api/v1/machines/{id}/task-result`: a task's exit code (`{"task", "exitCode"}`), noted
///   `taskFinished`; a failed task fails a deploying or wiping machine. Needs that machine's token.
struct AgentRoutes: Sendable {
    let intake: CallHomeIntake
    let tokens: MachineTokenAuthority
    let agentScript: String
    let unauthenticatedLimit: TokenBucket
    /// Attaches BMC credentials from the BMC address a call-home reports, when a credential set matches.
    let power: PowerOperations?
    let logger: Logger

    /// Who the history says wrote a task result.
    static let actor = "agent"
    /// How long a token handed to the agent lasts; polls renew it past half-life.
    static let agentTokenLifetime: TimeInterval = 7 * 24 * 3600
    /// How long an agent waits between polls when there is no job.
    static let pollInterval = 15

    func register(in router: Router<BasicRequestContext>) {
        router.get("/agent/anvil-agent.sh") { _, _ in
            guard let script = try? String(contentsOfFile: agentScript, encoding: .utf8) else {
                throw APIError(
                    .internalServerError, code: "agent_missing", message: "the agent script \(agentScript) is not readable")
            }
            return Response(
                status: .ok, headers: [.contentType: "text/x-shellscript; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: script)))
        }
        router.post("/api/v1/machines/callhome") { request, _ in try await callHome(request) }
        router.get("/api/v1/machines/:id/next-job") { request, context in
            let id = try context.parameters.require("id")
            let (machine, renewal) = try authenticate(request, for: id)
            _ = try await intake.store.fetch(Machine.self, key: machine.description)
            // There is no workflow engine yet, so there is never a job: the agent keeps polling.
            var headers: HTTPFields = [HTTPField.Name("Retry-After")!: "\(Self.pollInterval)"]
            if let renewal { headers[HTTPField.Name("Anvil-Token")!] = renewal }
            return Response(status: .noContent, headers: headers)
        }
        router.post("/api/v1/machines/:id/task-result") { request, context in
            let id = try context.parameters.require("id")
            let (machine, renewal) = try authenticate(request, for: id)
            let result: TaskResult
            switch TaskResult.parse(try await RequestBody.json(request)) {
            case .success(let parsed): result = parsed
            case .failure(let problem):
                throw APIError.badRequest(
                    "invalid_task_result", "task result: \(problem)", field: problem.field.isEmpty ? nil : problem.field)
            }
            let stored = try await intake.store.update(Machine.self, key: machine.description, actor: Self.actor) {
                current in
                let steps = result.steps(for: current)
                return (steps, [result.note(from: current, to: steps.last ?? current)])
            }
            let outcome = result.exitCode == 0 ? "success" : "failure"
            Counter(label: "anvil_task_results_total", dimensions: [("outcome", outcome)]).increment()
            logger.log(
                level: result.exitCode == 0 ? .info : .warning, "task finished",
                metadata: [
                    "machine": "\(stored.object.name)", "task": "\(result.task)", "exitCode": "\(result.exitCode)",
                    "state": "\(stored.object.state.rawValue)",
                ])
            var response = try JSONResponse.make(
                TaskResultAnswer(
                    machine: machine.description, state: stored.object.state.rawValue, bootEnv: stored.object.bootEnv))
            if let renewal { response.headers[HTTPField.Name("Anvil-Token")!] = renewal }
            return response
        }
    }

    private func callHome(_ request: Request) async throws -> Response {
        let tokenMachine: ObjectID?
        if let token = Self.bearerToken(request) {
            switch tokens.verify(token, now: Date()) {
            case .success(let machine): tokenMachine = machine
            case .failure(let refusal): throw Self.refused(refusal)
            }
        } else {
            tokenMachine = nil
            guard unauthenticatedLimit.take() else {
                Counter(label: "anvil_callhome_total", dimensions: [("outcome", "rate_limited")]).increment()
                throw APIError(
                    .tooManyRequests, code: "rate_limited", message: "too many call-homes from unknown machines; retry shortly",
                    headers: [HTTPField.Name("Retry-After")!: "2"])
            }
        }
        let report = try RequestBody.decode(CallHomeReport.self, from: try await RequestBody.json(request))
        let outcome = try await intake.receive(report, authenticatedAs: tokenMachine)
        Counter(label: "anvil_callhome_total", dimensions: [("outcome", outcome.label)]).increment()
        switch outcome {
        case .discovered(let machine), .updated(let machine, _):
            await attachBMC(of: machine, facts: report.facts)
        default: break
        }
        switch outcome {
        case .discovered(let machine):
            logger.info("machine discovered", metadata: ["machine": "\(machine.name)", "id": "\(machine.id)"])
            return try answer(machine, changes: [], status: .created)
        case .updated(let machine, let changes):
            return try answer(machine, changes: changes, status: .ok)
        case .tokenRequired(let name):
            throw APIError(
                .unauthorized, code: "machine_token_required",
                message: "this hardware is known as machine \(name); only unknown machines call home without a token "
                    + "(boot it through Anvil so its script carries one)")
        case .conflict(let message):
            logger.warning("call-home identity conflict", metadata: ["problem": "\(message)"])
            throw APIError(.conflict, code: "identity_conflict", message: message)
        }
    }

    /// A failure here is logged, never the call-home's: the machine is in the inventory either way.
    private func attachBMC(of machine: Machine, facts: HardwareFacts) async {
        guard let power else { return }
        do {
            if let set = try await power.attachFromFacts(facts, machine: machine.id, actor: "callhome") {
                logger.info(
                    "BMC attached",
                    metadata: ["machine": "\(machine.name)", "address": "\(facts.bmc?.address ?? "")", "credentialSet": "\(set)"])
            }
        } catch {
            logger.warning("BMC not attached", metadata: ["machine": "\(machine.name)", "error": "\(error)"])
        }
    }

    private func answer(_ machine: Machine, changes: [FactChange], status: HTTPResponse.Status) throws -> Response {
        let token = tokens.issue(for: machine.id, validFor: Self.agentTokenLifetime, now: Date())
        return try JSONResponse.make(
            CallHomeAnswer(
                machine: machine.id.description, name: machine.name, state: machine.state.rawValue, token: token,
                pollSeconds: Self.pollInterval, changes: changes.map(\.description)),
            status: status)
    }

    /// The machine a request's token is for, which must be `id`; a renewed token when past half-life.
    private func authenticate(_ request: Request, for id: String) throws -> (ObjectID, renewal: String?) {
        guard let token = Self.bearerToken(request) else {
            throw APIError(.unauthorized, code: "unauthenticated", message: "this endpoint needs the machine's token")
        }
        let machine = try Self.machine(of: token, for: id, tokens: tokens)
        let renew = tokens.verify(token, now: Date() + Self.agentTokenLifetime / 2)
        let renewal = (try? renew.get()) == nil ? tokens.issue(for: machine, validFor: Self.agentTokenLifetime, now: Date()) : nil
        return (machine, renewal)
    }

    /// The machine `token` is valid for, which must be `id`: 401 for a bad or expired token, 403 for
    /// another machine's.
    static func machine(of token: String, for id: String, tokens: MachineTokenAuthority) throws -> ObjectID {
        switch tokens.verify(token, now: Date()) {
        case .failure(let refusal):
            throw refused(refusal)
        case .success(let machine):
            guard machine.description == id.lowercased() else {
                throw APIError(.forbidden, code: "forbidden", message: "the token is for another machine")
            }
            return machine
        }
    }

    static func bearerToken(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        return header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
    }

    static func refused(_ refusal: MachineTokenAuthority.Refusal) -> APIError {
        switch refusal {
        case .expired: APIError(.unauthorized, code: "token_expired", message: "the machine token has expired")
        case .malformed, .badSignature: APIError(.unauthorized, code: "invalid_token", message: "the machine token is not valid")
        }
    }
}

/// What a successful call-home answers: who the machine is now, and its token for later calls.
struct CallHomeAnswer: Encodable {
    var machine: String
    var name: String
    var state: String
    var token: String
    var pollSeconds: Int
    /// What changed in the hardware since the last report, in words.
    var changes: [String]
}

/// What a task result answers: the machine's state after it.
struct TaskResultAnswer: Encodable {
    var machine: String
    var state: String
    var bootEnv: String
}

extension CallHomeOutcome {
    var label: String {
        switch self {
        case .discovered: "discovered"
        case .updated(_, let changes): changes.isEmpty ? "unchanged" : "facts_changed"
        case .tokenRequired: "token_required"
        case .conflict: "conflict"
        }
    }
}

/// A token bucket: `rate` takes per second on average, up to `burst` at once.
public final class TokenBucket: Sendable {
    private struct State {
        var tokens: Double
        var last: ContinuousClock.Instant
    }

    private let rate: Double
    private let burst: Double
    private let state: Mutex<State>

    public init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        state = Mutex(State(tokens: burst, last: .now))
    }

    func take() -> Bool {
        state.withLock { state in
            let now = ContinuousClock.now
            let elapsed = now - state.last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            state.tokens = min(burst, state.tokens + seconds * rate)
            state.last = now
            guard state.tokens >= 1 else { return false }
            state.tokens -= 1
            return true
        }
    }
}
