import ApplianceTesting
import Foundation
import HTTPTypes
import NIOCore
import ProvisioningModel
import SQLiteInventory
import Testing

/// A request the API must refuse, and how: status, stable code, and the field at fault.
struct BadRequest: Sendable, CustomTestStringConvertible {
    var method: HTTPRequest.Method
    var path: String
    var caller: Caller = .admin
    var body: String?
    var headers: HTTPFields = [:]
    var status: HTTPResponse.Status
    var code: String
    var field: String?

    var testDescription: String { "\(method) \(path) as \(caller) → \(status.code) \(code)" }

    static let machine = "/api/v1/machines/\(World.machineID)"

    static let all: [BadRequest] =
        malformed + queries + preconditions + authentication + notFound + readOnlyKinds + conflicts + invalid

    static let malformed: [BadRequest] = [
        BadRequest(method: .post, path: "/api/v1/machines", body: #"{"name": "#, status: .badRequest, code: "malformed_json"),
        BadRequest(method: .post, path: "/api/v1/bootenvs", body: "name=x", status: .badRequest, code: "malformed_json"),
        BadRequest(method: .put, path: "/api/v1/bootenvs/local", body: #"{"name": "local""#, status: .badRequest, code: "malformed_json"),
        BadRequest(method: .patch, path: machine, body: "{", status: .badRequest, code: "malformed_json"),
        BadRequest(method: .post, path: "/api/v1/tokens", body: "[", status: .badRequest, code: "malformed_json"),
        BadRequest(
            method: .post, path: "/api/v1/profiles", body: #"{"name": "deep", "params": {"x": "# + String(repeating: "[", count: 100_000),
            status: .badRequest, code: "malformed_json"),
        BadRequest(
            method: .post, path: "/api/v1/profiles",
            body: #"{"name": "deep", "params": {"x": "# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}}",
            status: .badRequest, code: "malformed_json"),
        BadRequest(method: .post, path: "/api/v1/machines", status: .badRequest, code: "empty_body"),
        BadRequest(method: .put, path: "/api/v1/bootenvs/local", body: "", status: .badRequest, code: "empty_body"),
        BadRequest(method: .patch, path: machine, status: .badRequest, code: "empty_body"),
        BadRequest(method: .post, path: "/api/v1/tokens", status: .badRequest, code: "empty_body"),
    ]

    static let queries: [BadRequest] = [
        BadRequest(method: .get, path: "/api/v1/machines?colour=red", status: .badRequest, code: "unknown_filter", field: "colour"),
        BadRequest(method: .get, path: "/api/v1/bootenvs?state=ready", status: .badRequest, code: "unknown_filter", field: "state"),
        BadRequest(method: .get, path: "/api/v1/leases?arch=amd64", status: .badRequest, code: "unknown_filter", field: "arch"),
        BadRequest(method: .get, path: "/api/v1/machines?limit=0", status: .badRequest, code: "invalid_query", field: "limit"),
        BadRequest(method: .get, path: "/api/v1/machines?limit=5000", status: .badRequest, code: "invalid_query", field: "limit"),
        BadRequest(method: .get, path: "/api/v1/subnets?limit=ten", status: .badRequest, code: "invalid_query", field: "limit"),
        BadRequest(method: .get, path: "/api/v1/machines?mac=not-a-mac", status: .badRequest, code: "invalid_query", field: "mac"),
        BadRequest(method: .get, path: "/api/v1/machines?cursor=garbage~cursor", status: .badRequest, code: "invalid_cursor", field: "cursor"),
        BadRequest(method: .get, path: "/api/v1/bootenvs?cursor=!!!", status: .badRequest, code: "invalid_cursor", field: "cursor"),
        BadRequest(method: .get, path: "/api/v1/events?after=-1", status: .badRequest, code: "invalid_query", field: "after"),
        BadRequest(method: .get, path: "/api/v1/events?after=soon", status: .badRequest, code: "invalid_query", field: "after"),
        BadRequest(method: .get, path: "/api/v1/events?limit=0", status: .badRequest, code: "invalid_query", field: "limit"),
        BadRequest(method: .get, path: "/api/v1/events?limit=1001", status: .badRequest, code: "invalid_query", field: "limit"),
        BadRequest(method: .get, path: "/api/v1/events/stream?after=-1", status: .badRequest, code: "invalid_query", field: "after"),
        BadRequest(method: .get, path: "/api/v1/params/\(World.param)/resolve", status: .badRequest, code: "missing_query", field: "machine"),
        BadRequest(method: .get, path: "/api/v1/params/\(World.param)/resolve?machine=", status: .badRequest, code: "missing_query", field: "machine"),
    ]

    static let preconditions: [BadRequest] = [
        BadRequest(
            method: .put, path: "/api/v1/bootenvs/local", body: #"{"description": "x"}"#, headers: [.ifMatch: "yesterday"],
            status: .badRequest, code: "invalid_if_match", field: "If-Match"),
        BadRequest(method: .patch, path: machine, body: "{}", headers: [.ifMatch: "\"0\""], status: .badRequest, code: "invalid_if_match", field: "If-Match"),
        BadRequest(method: .delete, path: "/api/v1/bootenvs/local", headers: [.ifMatch: "\"-3\""], status: .badRequest, code: "invalid_if_match", field: "If-Match"),
        BadRequest(
            method: .put, path: "/api/v1/bootenvs/local", body: #"{"description": "x"}"#, headers: [.ifMatch: "\"7\""],
            status: .preconditionFailed, code: "revision_mismatch", field: "If-Match"),
        BadRequest(method: .patch, path: machine, body: "{}", headers: [.ifMatch: "\"7\""], status: .preconditionFailed, code: "revision_mismatch"),
        BadRequest(method: .delete, path: "/api/v1/bootenvs/local", headers: [.ifMatch: "\"7\""], status: .preconditionFailed, code: "revision_mismatch"),
    ]

    static let authentication: [BadRequest] = [
        BadRequest(method: .get, path: "/api/v1/machines", caller: .anonymous, status: .unauthorized, code: "unauthenticated"),
        BadRequest(method: .post, path: "/api/v1/bootenvs", caller: .anonymous, body: #"{"name": "x"}"#, status: .unauthorized, code: "unauthenticated"),
        BadRequest(method: .get, path: "/api/v1/events/stream", caller: .anonymous, status: .unauthorized, code: "unauthenticated"),
        BadRequest(method: .get, path: "/api/v1/whoami", caller: .anonymous, headers: [.authorization: "Basic YWRtaW46YWRtaW4="], status: .unauthorized, code: "unauthenticated"),
        BadRequest(method: .get, path: "/api/v1/machines", caller: .secret("anvil_not-a-real-secret"), status: .unauthorized, code: "invalid_token"),
        BadRequest(method: .delete, path: machine, caller: .secret("anvil_wrong"), status: .unauthorized, code: "invalid_token"),
        BadRequest(method: .get, path: "/api/v1/info", caller: .expired, status: .unauthorized, code: "token_expired"),
        BadRequest(method: .post, path: "/api/v1/bootenvs", caller: .viewer, body: #"{"name": "x"}"#, status: .forbidden, code: "forbidden"),
        BadRequest(method: .put, path: "/api/v1/bootenvs/local", caller: .viewer, body: #"{"name": "local"}"#, status: .forbidden, code: "forbidden"),
        BadRequest(method: .patch, path: machine, caller: .viewer, body: #"{"description": "x"}"#, status: .forbidden, code: "forbidden"),
        BadRequest(method: .delete, path: machine, caller: .viewer, status: .forbidden, code: "forbidden"),
        BadRequest(method: .get, path: "/api/v1/tokens", caller: .operator, status: .forbidden, code: "forbidden"),
        BadRequest(method: .post, path: "/api/v1/tokens", caller: .operator, body: #"{"name": "x", "role": "admin"}"#, status: .forbidden, code: "forbidden"),
        BadRequest(method: .delete, path: "/api/v1/tokens/\(World.unknownID)", caller: .viewer, status: .forbidden, code: "forbidden"),
    ]

    static let notFound: [BadRequest] = [
        BadRequest(method: .get, path: "/api/v1/machines/\(World.unknownID)", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/machines/nobody", status: .notFound, code: "not_found"),
        BadRequest(method: .delete, path: "/api/v1/machines/nobody", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/bootenvs/nope", status: .notFound, code: "not_found"),
        BadRequest(method: .put, path: "/api/v1/stages/nope", body: #"{"description": "x"}"#, status: .notFound, code: "not_found"),
        BadRequest(method: .patch, path: "/api/v1/workflows/nope", body: "{}", status: .notFound, code: "not_found"),
        BadRequest(method: .delete, path: "/api/v1/subnets/nope", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/reservations/52:54:00:ff:ff:ff", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/jobs/\(World.unknownID)", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/jobs/not-a-uuid", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/leases/10.99.0.7", status: .notFound, code: "not_found"),
        BadRequest(method: .delete, path: "/api/v1/tokens/\(World.unknownID)", status: .notFound, code: "not_found"),
        BadRequest(method: .delete, path: "/api/v1/tokens/not-a-uuid", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/params/\(World.param)/resolve?machine=nobody", status: .notFound, code: "not_found", field: "machine"),
        BadRequest(method: .get, path: "/api/v1/params/\(World.param)/resolve?machine=\(World.unknownID)", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/params/undefined/resolve?machine=\(World.machineName)", status: .notFound, code: "not_found", field: "name"),
        BadRequest(method: .get, path: "/api/v1/params/\(World.param)/resolve?machine=\(World.machineName)&stage=nope", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/api/v1/nothing-here", status: .notFound, code: "not_found"),
        BadRequest(method: .get, path: "/nothing-here", caller: .anonymous, status: .notFound, code: "not_found"),
        BadRequest(method: .post, path: "/api/v1/info", body: "{}", status: .notFound, code: "not_found"),
        BadRequest(method: .delete, path: "/healthz", caller: .anonymous, status: .notFound, code: "not_found"),
    ]

    /// Jobs and leases are written by the appliance only. Hummingbird answers a known path with an
    /// unregistered method like an unknown path: 404, in the JSON error shape.
    static let readOnlyKinds: [BadRequest] = [
        BadRequest(method: .post, path: "/api/v1/jobs", body: #"{"machine": "\#(World.machineID)", "task": "wipe"}"#, status: .notFound, code: "not_found"),
        BadRequest(method: .put, path: "/api/v1/jobs/\(World.unknownID)", body: "{}", status: .notFound, code: "not_found"),
        BadRequest(method: .patch, path: "/api/v1/jobs/\(World.unknownID)", body: "{}", status: .notFound, code: "not_found"),
        BadRequest(method: .delete, path: "/api/v1/jobs/\(World.unknownID)", status: .notFound, code: "not_found"),
        BadRequest(method: .post, path: "/api/v1/leases", body: #"{"address": "10.99.0.7"}"#, status: .notFound, code: "not_found"),
        BadRequest(method: .put, path: "/api/v1/leases/10.99.0.7", body: "{}", status: .notFound, code: "not_found"),
        BadRequest(method: .patch, path: "/api/v1/leases/10.99.0.7", body: "{}", status: .notFound, code: "not_found"),
        BadRequest(method: .delete, path: "/api/v1/leases/10.99.0.7", status: .notFound, code: "not_found"),
    ]

    static let conflicts: [BadRequest] = [
        BadRequest(method: .post, path: "/api/v1/bootenvs", body: #"{"name": "local"}"#, status: .conflict, code: "already_exists", field: "name"),
        BadRequest(method: .post, path: "/api/v1/subnets", body: #"{"name": "lab", "network": "10.5.0.0/24", "mode": "proxy"}"#, status: .conflict, code: "already_exists", field: "name"),
        BadRequest(method: .post, path: "/api/v1/machines", body: #"{"name": "node1"}"#, status: .conflict, code: "already_exists", field: "name"),
        BadRequest(
            method: .post, path: "/api/v1/machines", body: #"{"name": "node2", "interfaces": [{"mac": "52-54-00-00-00-01"}]}"#,
            status: .conflict, code: "already_exists", field: "interfaces[0].mac"),
        BadRequest(
            method: .post, path: "/api/v1/machines",
            body: #"{"id": "\#(World.machineID)", "name": "node1-again"}"#, status: .conflict, code: "already_exists", field: "id"),
        BadRequest(
            method: .post, path: "/api/v1/reservations", body: #"{"mac": "5254.0000.0099", "address": "10.99.0.98", "subnet": "lab"}"#,
            status: .conflict, code: "already_exists", field: "mac"),
        BadRequest(
            method: .post, path: "/api/v1/reservations",
            body: #"{"mac": "52:54:00:00:00:98", "address": "\#(World.reservationAddress)", "subnet": "lab"}"#,
            status: .conflict, code: "already_exists", field: "address"),
        BadRequest(method: .post, path: "/api/v1/tokens", body: #"{"name": "viewer", "role": "viewer"}"#, status: .conflict, code: "already_exists", field: "name"),
        BadRequest(method: .delete, path: "/api/v1/bootenvs/discovery", status: .conflict, code: "in_use"),
        BadRequest(method: .delete, path: "/api/v1/subnets/lab", status: .conflict, code: "in_use"),
        BadRequest(method: .delete, path: "/api/v1/profiles/\(World.stageProfile)", status: .conflict, code: "in_use"),
        BadRequest(method: .put, path: "/api/v1/bootenvs/\(World.contentBootEnv)", body: #"{"description": "mine now"}"#, status: .conflict, code: "read_only_content"),
        BadRequest(method: .patch, path: "/api/v1/bootenvs/\(World.contentBootEnv)", body: #"{"description": "mine now"}"#, status: .conflict, code: "read_only_content"),
        BadRequest(method: .delete, path: "/api/v1/bootenvs/\(World.contentBootEnv)", status: .conflict, code: "read_only_content"),
        BadRequest(method: .post, path: "/api/v1/bootenvs", body: #"{"name": "\#(World.contentBootEnv)"}"#, status: .conflict, code: "read_only_content"),
    ]

    static let invalid: [BadRequest] = [
        BadRequest(method: .post, path: "/api/v1/bootenvs", body: #"{"name": "x", "colour": "red"}"#, status: .unprocessableContent, code: "unknown_field", field: "colour"),
        BadRequest(method: .put, path: "/api/v1/bootenvs/local", body: #"{"kernel": "vmlinuz"}"#, status: .unprocessableContent, code: "unknown_field", field: "kernel"),
        BadRequest(method: .patch, path: machine, body: #"{"hostname": "x"}"#, status: .unprocessableContent, code: "unknown_field", field: "hostname"),
        BadRequest(method: .post, path: "/api/v1/tokens", body: #"{"name": "x", "role": "viewer", "scope": "all"}"#, status: .unprocessableContent, code: "unknown_field", field: "scope"),
        BadRequest(method: .post, path: "/api/v1/machines", body: "{}", status: .unprocessableContent, code: "invalid", field: "name"),
        BadRequest(method: .post, path: "/api/v1/machines", body: "[]", status: .unprocessableContent, code: "invalid"),
        BadRequest(method: .post, path: "/api/v1/machines", body: "42", status: .unprocessableContent, code: "invalid"),
        BadRequest(method: .patch, path: machine, body: #"["name"]"#, status: .unprocessableContent, code: "invalid"),
        BadRequest(method: .post, path: "/api/v1/machines", body: #"{"name": "bad name!"}"#, status: .unprocessableContent, code: "invalid", field: "name"),
        BadRequest(method: .post, path: "/api/v1/machines", body: #"{"name": "m", "bootEnv": "nope"}"#, status: .unprocessableContent, code: "invalid", field: "bootEnv"),
        BadRequest(method: .post, path: "/api/v1/machines", body: #"{"name": "m", "state": "exploded"}"#, status: .unprocessableContent, code: "invalid", field: "state"),
        BadRequest(method: .post, path: "/api/v1/machines", body: #"{"name": "m", "id": "not-a-uuid"}"#, status: .unprocessableContent, code: "invalid", field: "id"),
        BadRequest(method: .patch, path: machine, body: #"{"state": "deployed"}"#, status: .unprocessableContent, code: "invalid", field: "state"),
        BadRequest(method: .post, path: "/api/v1/subnets", body: #"{"name": "s", "network": "10.0.0.0/33"}"#, status: .unprocessableContent, code: "invalid", field: "network"),
        BadRequest(method: .post, path: "/api/v1/reservations", body: #"{"mac": "52:54:00:00:00:98", "address": "10.99.0.98", "subnet": "nope"}"#, status: .unprocessableContent, code: "invalid", field: "subnet"),
        BadRequest(method: .post, path: "/api/v1/profiles", body: #"{"name": "p", "params": {"ntp-server": 5}}"#, status: .unprocessableContent, code: "invalid", field: "params.ntp-server"),
        BadRequest(method: .post, path: "/api/v1/params", body: #"{"name": "p", "schema": {"type": "integer"}, "default": "three"}"#, status: .unprocessableContent, code: "invalid", field: "default"),
        BadRequest(method: .post, path: "/api/v1/tasks", body: #"{"name": "t"}"#, status: .unprocessableContent, code: "invalid", field: "templates"),
        BadRequest(method: .post, path: "/api/v1/workflows", body: #"{"name": "w", "stages": ["nope"]}"#, status: .unprocessableContent, code: "invalid", field: "stages[0]"),
        BadRequest(method: .post, path: "/api/v1/stages", body: #"{"name": "s", "tasks": "wipe"}"#, status: .unprocessableContent, code: "invalid", field: "tasks"),
        BadRequest(method: .post, path: "/api/v1/tokens", body: #"{"name": "x", "role": "root"}"#, status: .unprocessableContent, code: "invalid", field: "role"),
        BadRequest(method: .post, path: "/api/v1/tokens", body: #"{"name": "x y", "role": "viewer", "expiresInSeconds": 0}"#, status: .unprocessableContent, code: "invalid", field: "name"),
        BadRequest(
            method: .post, path: "/api/v1/tokens", body: #"{"name": "forever", "role": "viewer", "expiresInSeconds": 1000000000000}"#,
            status: .unprocessableContent, code: "invalid", field: "expiresInSeconds"),
    ]
}

@Suite("Error responses")
struct ErrorResponseTests {
    @Test("bad requests are refused with the right status, code and field", arguments: BadRequest.all)
    func refused(_ bad: BadRequest) async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.request(bad.method, bad.path, as: bad.caller, raw: bad.body, headers: bad.headers)
            response.expectError(bad.status, bad.code, field: bad.field)
            #expect(response.status.code < 500, "a user error must never be a server error: \(response)")
            if bad.status == .unauthorized {
                #expect(response.headers[.wwwAuthenticate] == "Bearer realm=\"anvil\"")
            } else {
                #expect(response.headers[.wwwAuthenticate] == nil)
            }
        }
    }

    @Test("every error code the API documents is produced by the table above")
    func everyCodeCovered() {
        let codes = Set(BadRequest.all.map(\.code))
        let documented: Set<String> = [
            "malformed_json", "empty_body", "unknown_filter", "invalid_query", "invalid_cursor", "invalid_if_match", "missing_query",
            "unauthenticated", "invalid_token", "token_expired", "forbidden", "not_found", "already_exists", "in_use",
            "read_only_content", "revision_mismatch", "invalid", "unknown_field",
        ]
        #expect(documented.subtracting(codes).isEmpty, "not exercised: \(documented.subtracting(codes).sorted())")
    }

    @Test("a refused write changes nothing and records no event", arguments: BadRequest.all.filter { $0.method != .get })
    func refusedWriteChangesNothing(_ bad: BadRequest) async throws {
        try await APITestHarness.withAPI { api in
            let before = try await api.store.latestEventCursor()
            _ = try await api.request(bad.method, bad.path, as: bad.caller, raw: bad.body, headers: bad.headers)
            #expect(try await api.store.latestEventCursor() == before)
        }
    }

    @Test("422 invalid lists every problem, each with its field")
    func everyProblemListed() async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.post("/api/v1/machines", [
                "name": "bad name!",
                "bootEnv": "no-such-bootenv",
                "interfaces": [["mac": "52:54:00:00:00:42", "boot": true], ["mac": "52-54-00-00-00-42", "boot": true]],
                "bmc": ["address": "10.0.0.9", "port": 70000],
                "facts": ["cpuCores": 0],
            ])
            response.expectError(.unprocessableContent, "invalid", field: "name")
            #expect(Set(response.problemFields) == ["name", "interfaces[1].mac", "interfaces", "bmc.port", "facts.cpuCores", "bootEnv"])
            for problem in response.error?["problems"]?.arrayValue ?? [] {
                #expect(problem["message"]?.stringValue?.isEmpty == false)
            }
        }
    }

    @Test("a subnet with several mistakes reports all of them")
    func everySubnetProblemListed() async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.post("/api/v1/subnets", [
                "name": "-bad", "network": "10.9.0.0/24", "rangeStart": "10.8.0.10", "rangeEnd": "10.10.0.5",
                "router": "192.168.0.1", "leaseSeconds": 5,
            ])
            response.expectError(.unprocessableContent, "invalid")
            #expect(Set(response.problemFields).isSuperset(of: ["name", "leaseSeconds", "rangeStart", "rangeEnd", "router"]))
        }
    }

    static let typeMismatches: [(body: JSONValue, field: String)] = [
        (["name": "m", "interfaces": [["mac": 42]]], "interfaces[0].mac"),
        (["name": "m", "interfaces": [["mac": "52:54:00:00:00:42"], ["mac": "not-a-mac"]]], "interfaces[1].mac"),
        (["name": "m", "interfaces": [["mac": "52:54:00:00:00:42", "boot": "yes"]]], "interfaces[0].boot"),
        (["name": 7], "name"),
        (["name": "m", "profiles": "rack1"], "profiles"),
        (["name": "m", "facts": ["cpuCores": "many"]], "facts.cpuCores"),
        (["name": "m", "facts": ["disks": [["name": "sda", "sizeBytes": "big"]]]], "facts.disks[0].sizeBytes"),
        (["name": "m", "bmc": ["address": "10.0.0.9", "port": "623"]], "bmc.port"),
        (["name": "m", "architecture": "sparc"], "architecture"),
        (["name": "m", "params": ["a", "b"]], "params"),
    ]

    @Test("a type mismatch is a 422 naming the JSON path of the field", arguments: typeMismatches)
    func typeMismatch(body: JSONValue, field: String) async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.post("/api/v1/machines", body)
            response.expectError(.unprocessableContent, "invalid", field: field)
            #expect(response.problemFields == [field])
        }
    }

    @Test("an unknown field is a 422 naming every unknown field")
    func unknownFields() async throws {
        try await APITestHarness.withAPI { api in
            let response = try await api.post("/api/v1/machines", ["name": "m", "zeta": 1, "alpha": 2])
            response.expectError(.unprocessableContent, "unknown_field", field: "alpha")
            #expect(response.problemFields == ["alpha", "zeta"])
        }
    }

    static let illegalMoves: [(from: MachineState, to: MachineState)] = [
        (.discovered, .deployed), (.discovered, .wiping), (.ready, .deployed), (.deploying, .ready), (.retired, .ready),
        (.wiping, .deployed),
    ]

    @Test("an illegal lifecycle transition is a 422 on the state field", arguments: illegalMoves)
    func illegalTransition(from: MachineState, to: MachineState) async throws {
        try await APITestHarness.withAPI { api in
            try await api.create("machines", ["name": "m", "state": .string(from.rawValue)])
            let response = try await api.patch("/api/v1/machines/m", ["state": .string(to.rawValue)])
            response.expectError(.unprocessableContent, "invalid", field: "state")
            #expect(try await api.get("/api/v1/machines/m").json?["state"] == .string(from.rawValue))
        }
    }

    @Test("a legal lifecycle transition is accepted")
    func legalTransitions() async throws {
        try await APITestHarness.withAPI { api in
            for state in ["ready", "deploying", "deployed", "reimageQueued", "wiping", "failed", "maintenance", "retired"] {
                let response = try await api.patch("/api/v1/machines/\(World.machineName)", ["state": .string(state)])
                #expect(response.status == .ok, "→ \(state): \(response)")
            }
        }
    }

    @Test("a body over 4 MiB is a 413 and changes nothing", arguments: [HTTPRequest.Method.post, .put, .patch])
    func bodyTooLarge(method: HTTPRequest.Method) async throws {
        try await APITestHarness.withAPI { api in
            let before = try await api.get("/api/v1/bootenvs/local")
            let envelope = #"{"name": "local", "description": ""}"#
            let padding = String(repeating: "x", count: (4 << 20) - envelope.utf8.count + 1)
            let path = method == .post ? "/api/v1/bootenvs" : "/api/v1/bootenvs/local"
            let response = try await api.request(method, path, as: .operator, raw: #"{"name": "local", "description": "\#(padding)"}"#)
            response.expectError(.contentTooLarge, "body_too_large")
            #expect(try await api.get("/api/v1/bootenvs/local").json == before.json)
        }
    }

    @Test("a body of exactly 4 MiB is accepted")
    func bodyAtLimit() async throws {
        try await APITestHarness.withAPI { api in
            let envelope = #"{"name": "big", "description": ""}"#
            let padding = String(repeating: "x", count: (4 << 20) - envelope.utf8.count)
            let body = #"{"name": "big", "description": "\#(padding)"}"#
            #expect(body.utf8.count == 4 << 20)
            let response = try await api.request(.post, "/api/v1/bootenvs", as: .operator, raw: body)
            #expect(response.status == .created, "\(response.status)")
        }
    }
}
