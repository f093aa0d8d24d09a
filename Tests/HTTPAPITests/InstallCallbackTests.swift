import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ProvisioningModel
import Testing

/// The installers' `installed` callback on the boot plane and the agent's task results, over the
/// two planes of `RenderedFileTests` (a real SQLite inventory holding the shipped content).
@Suite("Install callbacks and task results")
struct InstallCallbackTests {
    static let mac = RenderedFileTests.mac
    static let script = "/boot/52-54-00-00-10-01.ipxe"

    /// Creates a machine booting `bootEnv` from `mac` in `state`; returns its id.
    static func createMachine(
        _ api: APIClient, name: String, bootEnv: String, state: String, profiles: [String] = [],
        params: JSONValue = ["root-password-hash": "$6$salt$hash"], mac: String = mac
    ) async throws -> String {
        let machine = try await api.create(
            "machines",
            [
                "name": .string(name), "bootEnv": .string(bootEnv), "state": .string(state), "params": params,
                "profiles": .array(profiles.map { .string($0) }), "interfaces": [["mac": .string(mac), "boot": true]],
            ])
        return try #require(machine["id"]?.stringValue)
    }

    static func post(
        _ boot: any TestClientProtocol, _ path: String, token: String? = nil, body: String? = nil
    ) async throws -> APIResponse {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await boot.execute(
            uri: path, method: .post, headers: headers, body: body.map { ByteBuffer(string: $0) })
        return APIResponse(status: response.status, headers: response.headers, body: response.body)
    }

    static func get(_ boot: any TestClientProtocol, _ path: String) async throws -> (HTTPResponse.Status, String) {
        let response = try await boot.execute(uri: path, method: .get, headers: [:], body: nil)
        return (response.status, String(buffer: response.body))
    }

    static func machine(_ api: APIClient, _ id: String) async throws -> JSONValue {
        let response = try await api.get("/api/v1/machines/\(id)")
        #expect(response.status == .ok, "\(response)")
        return try #require(response.json)
    }

    /// The states the machine's `updated` events recorded, oldest first.
    static func updatedStates(_ api: APIClient, _ id: String) async throws -> [String] {
        try await RenderedFileTests.history(api, id, action: "updated").compactMap { $0["state"]?.stringValue }
    }

    @Test(
        "an installer's callback with the token from its preseed makes the machine boot local and deployed; the next iPXE script boots the disk; a retry changes nothing"
    )
    func installedSwitchesToLocal() async throws {
        try await RenderedFileTests.withPlanes { api, boot in
            let id = try await Self.createMachine(api, name: "node-install", bootEnv: "debian-12-install", state: "ready")
            let (status, installer) = try await Self.get(boot, Self.script)
            #expect(status == .ok)
            #expect(installer.contains("/machines/\(id)/preseed.cfg"), "\(installer)")
            let (preseedStatus, preseed) = try await Self.get(boot, "/machines/\(id)/preseed.cfg")
            #expect(preseedStatus == .ok, "\(preseed)")
            let token = String(try #require(preseed.firstMatch(of: /installed\?token=([A-Za-z0-9._-]+)'/)?.output.1))

            let answer = try await Self.post(boot, "/machines/\(id)/installed?token=\(token)")
            #expect(answer.status == .ok, "\(answer)")
            #expect(answer.headers[.contentType] == "application/json")
            #expect(answer.json == ["machine": .string(id), "name": "node-install", "bootEnv": "local", "state": "deployed"])

            let machine = try await Self.machine(api, id)
            #expect(machine["bootEnv"] == "local" && machine["state"] == "deployed", "\(machine)")
            // ready -> deploying -> deployed: one legal move per write, none skipped.
            #expect(try await Self.updatedStates(api, id) == ["deploying", "deployed"])
            // The rendered-file cache noticed: the same MAC now gets the local-disk script.
            let (localStatus, local) = try await Self.get(boot, Self.script)
            #expect(localStatus == .ok)
            #expect(local.hasPrefix("#!ipxe\n# Anvil: node-install boots from its local disk\n"), "\(local)")
            #expect(local.contains("sanboot"), "\(local)")

            let installed = try await RenderedFileTests.history(api, id, action: "installed")
            #expect(installed.count == 1)
            #expect(installed.first?["actor"] == "install-callback")
            let detail = installed.first?["detail"]
            #expect(detail?["finished"] == "debian-12-install" && detail?["bootEnv"] == "local", "\(installed)")
            #expect(detail?["previousState"] == "ready" && detail?["state"] == "deployed", "\(installed)")

            // A retried wget: the same answer, nothing new in the history.
            let again = try await Self.post(boot, "/machines/\(id)/installed?token=\(token)")
            #expect(again.status == .ok, "\(again)")
            #expect(again.json?["bootEnv"] == "local" && again.json?["state"] == "deployed", "\(again)")
            #expect(try await RenderedFileTests.history(api, id, action: "installed").count == 1)
            #expect(try await Self.updatedStates(api, id) == ["deploying", "deployed"])

            // Refused callers change nothing.
            let anonymous = try await Self.post(boot, "/machines/\(id)/installed")
            anonymous.expectError(.unauthorized, "machine_token_required")
            let empty = try await Self.post(boot, "/machines/\(id)/installed?token=")
            empty.expectError(.unauthorized, "machine_token_required")
            let other = try await Self.createMachine(
                api, name: "other", bootEnv: "debian-12-install", state: "deploying", mac: "52:54:00:00:10:02")
            let otherToken = api.harness.machineTokens.issue(for: ObjectID(other)!, validFor: 3600, now: Date())
            let foreign = try await Self.post(boot, "/machines/\(id)/installed?token=\(otherToken)")
            foreign.expectError(.forbidden, "forbidden")
            let expired = api.harness.machineTokens.issue(for: ObjectID(id)!, validFor: -60, now: Date())
            try await Self.post(boot, "/machines/\(id)/installed?token=\(expired)").expectError(.unauthorized, "token_expired")
            try await Self.post(boot, "/machines/\(id)/installed?token=m1.garbage").expectError(.unauthorized, "invalid_token")
            let unknown = ObjectID()
            let unknownToken = api.harness.machineTokens.issue(for: unknown, validFor: 3600, now: Date())
            try await Self.post(boot, "/machines/\(unknown)/installed?token=\(unknownToken)").expectError(.notFound, "not_found")
            #expect(try await RenderedFileTests.history(api, id, action: "installed").count == 1)
            #expect(try await Self.machine(api, other)["state"] == "deploying")
        }
    }

    @Test("boot-after-install from a profile picks the boot environment after the install; a bearer token works too")
    func bootAfterInstallFromProfile() async throws {
        try await RenderedFileTests.withPlanes { api, boot in
            _ = try await api.create("profiles", ["name": "rediscover", "params": ["boot-after-install": "discovery"]])
            let id = try await Self.createMachine(
                api, name: "node-profile", bootEnv: "debian-12-install", state: "deploying", profiles: ["rediscover"])
            let token = api.harness.machineTokens.issue(for: ObjectID(id)!, validFor: 3600, now: Date())

            let answer = try await Self.post(boot, "/machines/\(id)/installed", token: token)
            #expect(answer.status == .ok, "\(answer)")
            #expect(answer.json?["bootEnv"] == "discovery" && answer.json?["state"] == "deployed", "\(answer)")
            #expect(try await Self.updatedStates(api, id) == ["deployed"])
            let (_, script) = try await Self.get(boot, Self.script)
            #expect(script.contains("discovery/amd64/vmlinuz"), "\(script)")
            let note = try await RenderedFileTests.history(api, id, action: "installed")
            #expect(note.count == 1 && note.first?["detail"]?["bootEnv"] == "discovery", "\(note)")
            #expect(note.first?["detail"]?["previousState"] == "deploying", "\(note)")
        }
    }

    @Test("a boot-after-install naming no boot environment is refused with the field, and nothing changes")
    func bootAfterInstallUnknown() async throws {
        try await RenderedFileTests.withPlanes { api, boot in
            let id = try await Self.createMachine(
                api, name: "node-typo", bootEnv: "debian-12-install", state: "deploying",
                params: ["root-password-hash": "$6$salt$hash", "boot-after-install": "locla"])
            let token = api.harness.machineTokens.issue(for: ObjectID(id)!, validFor: 3600, now: Date())
            let answer = try await Self.post(boot, "/machines/\(id)/installed?token=\(token)")
            answer.expectError(.unprocessableContent, "invalid", field: "bootEnv")
            #expect(answer.text.contains("locla"), "\(answer)")
            let machine = try await Self.machine(api, id)
            #expect(machine["bootEnv"] == "debian-12-install" && machine["state"] == "deploying", "\(machine)")
            #expect(try await RenderedFileTests.history(api, id, action: "installed").isEmpty)
        }
    }

    @Test("a machine an operator owns (maintenance, failed) is not moved by a callback: 409 and nothing recorded")
    func installedRefusedForOperatorStates() async throws {
        try await RenderedFileTests.withPlanes { api, boot in
            for (index, state) in ["maintenance", "failed", "retired"].enumerated() {
                let id = try await Self.createMachine(
                    api, name: "node-\(state)", bootEnv: "debian-12-install", state: state,
                    mac: "52:54:00:00:20:0\(index)")
                let token = api.harness.machineTokens.issue(for: ObjectID(id)!, validFor: 3600, now: Date())
                let answer = try await Self.post(boot, "/machines/\(id)/installed?token=\(token)")
                answer.expectError(.conflict, "machine_not_installing", field: "state")
                #expect(answer.text.contains("the machine is \(state)"), "\(answer)")
                let machine = try await Self.machine(api, id)
                #expect(machine["bootEnv"] == "debian-12-install" && machine["state"] == .string(state), "\(machine)")
                #expect(try await RenderedFileTests.history(api, id, action: "installed").isEmpty)
            }
        }
    }

    @Test("a task result is noted; a failed task fails a deploying machine and the note says which task and code")
    func taskResults() async throws {
        try await RenderedFileTests.withPlanes { api, boot in
            let id = try await Self.createMachine(
                api, name: "node-task", bootEnv: "image-deploy", state: "deploying",
                params: ["image-url": "http://127.0.0.1/image.raw"])
            let token = api.harness.machineTokens.issue(for: ObjectID(id)!, validFor: 3600, now: Date())
            let path = "/api/v1/machines/\(id)/task-result"
            let task = "http://127.0.0.1:8080/machines/\(id)/image-deploy.sh"

            let success = try await Self.post(boot, path, token: token, body: #"{"task": "\#(task)", "exitCode": 0}"#)
            #expect(success.status == .ok, "\(success)")
            #expect(success.json == ["machine": .string(id), "state": "deploying", "bootEnv": "image-deploy"])
            var notes = try await RenderedFileTests.history(api, id, action: "taskFinished")
            #expect(notes.count == 1)
            #expect(notes.first?["actor"] == "agent")
            #expect(notes.first?["detail"]?["task"] == .string(task) && notes.first?["detail"]?["exitCode"] == 0, "\(notes)")
            #expect(try await Self.updatedStates(api, id).isEmpty)

            let failure = try await Self.post(boot, path, token: token, body: #"{"task": "\#(task)", "exitCode": 3}"#)
            #expect(failure.status == .ok, "\(failure)")
            #expect(failure.json?["state"] == "failed", "\(failure)")
            let machine = try await Self.machine(api, id)
            #expect(machine["state"] == "failed" && machine["bootEnv"] == "image-deploy", "\(machine)")
            notes = try await RenderedFileTests.history(api, id, action: "taskFinished")
            #expect(notes.count == 2)
            let detail = notes.last?["detail"]
            #expect(
                detail?["exitCode"] == 3 && detail?["previousState"] == "deploying" && detail?["state"] == "failed", "\(notes)")
            #expect(
                detail?["message"]?.stringValue == "task \(task) exited with 3; the machine went from deploying to failed",
                "\(notes)")

            // Another failure on the failed machine is noted, and moves nothing.
            let later = try await Self.post(boot, path, token: token, body: #"{"task": "\#(task)", "exitCode": 1}"#)
            #expect(later.status == .ok && later.json?["state"] == "failed", "\(later)")
            #expect(try await Self.updatedStates(api, id) == ["failed"])
        }
    }

    @Test("a wiping machine whose wipe task fails is failed")
    func failedWipe() async throws {
        try await RenderedFileTests.withPlanes { api, boot in
            let id = try await Self.createMachine(api, name: "node-wipe", bootEnv: "wipe", state: "wiping", params: [:])
            let token = api.harness.machineTokens.issue(for: ObjectID(id)!, validFor: 3600, now: Date())
            let answer = try await Self.post(
                boot, "/api/v1/machines/\(id)/task-result", token: token,
                body: #"{"task": "http://x/wipe-disks.sh", "exitCode": 2}"#)
            #expect(answer.status == .ok && answer.json?["state"] == "failed", "\(answer)")
            #expect(try await Self.updatedStates(api, id) == ["failed"])
        }
    }

    @Test("a task result with a bad body is a 400 naming the field, and a wrong token a 401 or 403; neither is noted")
    func taskResultRefusals() async throws {
        try await RenderedFileTests.withPlanes { api, boot in
            let id = try await Self.createMachine(
                api, name: "node-bad", bootEnv: "image-deploy", state: "deploying",
                params: ["image-url": "http://127.0.0.1/i.raw"])
            let token = api.harness.machineTokens.issue(for: ObjectID(id)!, validFor: 3600, now: Date())
            let path = "/api/v1/machines/\(id)/task-result"
            for (body, field) in [
                (#"{"exitCode": 0}"#, "task"),
                (#"{"task": 5, "exitCode": 0}"#, "task"),
                (#"{"task": "", "exitCode": 0}"#, "task"),
                (#"{"task": "http://x/t.sh"}"#, "exitCode"),
                (#"{"task": "http://x/t.sh", "exitCode": "3"}"#, "exitCode"),
                (#"{"task": "http://x/t.sh", "exitCode": 1.5}"#, "exitCode"),
                (#"{"task": "http://x/t.sh", "exitCode": 256}"#, "exitCode"),
                (#"{"task": "http://x/t.sh", "exitCode": -1}"#, "exitCode"),
                (#"{"task": "http://x/t.sh", "exitCode": 0, "output": "x"}"#, "output"),
            ] {
                let answer = try await Self.post(boot, path, token: token, body: body)
                answer.expectError(.badRequest, "invalid_task_result", field: field)
            }
            try await Self.post(boot, path, token: token, body: "[1]").expectError(.badRequest, "invalid_task_result")
            try await Self.post(boot, path, token: token, body: "{").expectError(.badRequest, "malformed_json")
            try await Self.post(boot, path, token: token).expectError(.badRequest, "empty_body")

            let body = #"{"task": "http://x/t.sh", "exitCode": 3}"#
            try await Self.post(boot, path, body: body).expectError(.unauthorized, "unauthenticated")
            try await Self.post(boot, path, token: "m1.nonsense", body: body).expectError(.unauthorized, "invalid_token")
            let other = api.harness.machineTokens.issue(for: ObjectID(), validFor: 3600, now: Date())
            try await Self.post(boot, path, token: other, body: body).expectError(.forbidden, "forbidden")

            #expect(try await RenderedFileTests.history(api, id, action: "taskFinished").isEmpty)
            #expect(try await Self.machine(api, id)["state"] == "deploying")
        }
    }
}
