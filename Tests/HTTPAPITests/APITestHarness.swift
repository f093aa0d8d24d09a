import ApplianceTesting
import BootEnvRendering
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NetworkPrimitives
import ProvisioningModel
import SQLiteInventory
import Testing

/// Who makes a request: one of the harness's tokens, nobody, or a raw bearer secret.
enum Caller: Sendable, CustomStringConvertible {
    case admin, `operator`, viewer, expired
    case anonymous
    case secret(String)

    var description: String {
        switch self {
        case .admin: "admin"
        case .operator: "operator"
        case .viewer: "viewer"
        case .expired: "expired"
        case .anonymous: "anonymous"
        case .secret: "secret"
        }
    }
}

/// Objects every harness starts with, under fixed keys so tables of requests can name them.
enum World {
    static let machineID = "00000000-0000-4000-8000-000000000001"
    static let machineName = "node1"
    static let machineMAC = Fixtures.mac(1)  // 52:54:00:00:00:01
    static let subnet = "lab"
    static let reservationMAC = "52:54:00:00:00:99"
    static let reservationAddress = "10.99.0.99"
    /// A bootenv loaded as shipped content, so read-only through the API.
    static let contentBootEnv = "shipped"
    static let stage = "install"
    static let stageProfile = "install-settings"
    static let rackProfile = "rack1"
    static let param = "ntp-server"
    static let task = "wipe"
    static let workflow = "deploy"
    static let jobID = "00000000-0000-4000-8000-000000000002"
    static let leaseAddress = "10.99.0.150"
    static let unknownID = "00000000-0000-4000-8000-0000000000ff"
}

/// A fresh inventory in a temporary directory, tokens for every role, and the admin router on top.
/// Each test gets its own, so tests never see each other's writes.
struct APITestHarness: Sendable {
    let directory: TemporaryDirectory
    let store: SQLiteInventory
    let secrets: [String: String]
    let tokenIDs: [String: String]
    /// Signs the machine tokens rendered into machines' files.
    let machineTokens = MachineTokenAuthority(key: MachineTokenAuthority.generateKey())

    /// Token names double as the actor names in events (`token:operator`).
    static let tokenNames = ["admin", "operator", "viewer", "expired"]

    init(seed: Bool = true) async throws {
        directory = try TemporaryDirectory(prefix: "anvil-httpapi")
        store = try SQLiteInventory(path: directory.file("inventory.sqlite"))
        var secrets: [String: String] = [:]
        var tokenIDs: [String: String] = [:]
        let now = Date()
        for (name, role) in [("admin", Role.admin), ("operator", .operator), ("viewer", .viewer), ("expired", .admin)] {
            let secret = APIToken.generateSecret()
            let expiresAt = name == "expired" ? now.addingTimeInterval(-60) : nil
            let token = APIToken(name: name, role: role, createdAt: now, expiresAt: expiresAt)
            try await store.createToken(token, secretHash: APIToken.hash(secret: secret))
            secrets[name] = secret
            tokenIDs[name] = token.id.description
        }
        self.secrets = secrets
        self.tokenIDs = tokenIDs
        if seed { try await seedWorld() }
    }

    /// The objects of `World`, written straight to the store (not through the API, so no token events).
    private func seedWorld() async throws {
        for bootEnv in Fixtures.bootEnvs { _ = try await store.create(bootEnv, actor: "seed") }
        _ = try await store.loadContent([
            ContentObject(object: BootEnv(name: World.contentBootEnv, description: "Shipped with Anvil"), source: "bootenvs/shipped.yaml")
        ])
        _ = try await store.create(Fixtures.subnet(World.subnet), actor: "seed")
        _ = try await store.create(
            Reservation(mac: MACAddress(World.reservationMAC)!, address: IPv4Address(World.reservationAddress)!, subnet: World.subnet),
            actor: "seed")
        _ = try await store.create(Param(name: World.param, schema: ParamSchema(type: .string), default: "pool.ntp.org"), actor: "seed")
        _ = try await store.create(Profile(name: World.rackProfile), actor: "seed")
        _ = try await store.create(Profile(name: World.stageProfile), actor: "seed")
        _ = try await store.create(Stage(name: World.stage, bootEnv: "discovery", profile: World.stageProfile), actor: "seed")
        var machine = Fixtures.machine(1)
        machine.id = ObjectID(World.machineID)!
        _ = try await store.create(machine, actor: "seed")
        _ = try await store.create(TaskDefinition(name: World.task, templates: [TaskTemplate(name: "run", template: "wipe.sh.tmpl")]), actor: "seed")
        _ = try await store.create(Workflow(name: World.workflow, stages: [World.stage]), actor: "seed")
        _ = try await store.create(Job(id: ObjectID(World.jobID)!, machine: machine.id, task: World.task, createdAt: Date()), actor: "seed")
        _ = try await store.create(
            Lease(address: IPv4Address(World.leaseAddress)!, mac: World.machineMAC, subnet: World.subnet, state: .bound,
                expiresAt: Date().addingTimeInterval(3600)),
            actor: "seed")
    }

    func secret(for caller: Caller) -> String? {
        switch caller {
        case .anonymous: nil
        case .secret(let secret): secret
        default: secrets["\(caller)"]
        }
    }

    /// Renders from the repository's templates unless a test brings its own.
    func machineFiles(templates: String = AnvilServer.repositoryRoot + "/templates") -> MachineFileRenderer {
        MachineFileRenderer(store: store, renderer: BootScriptRenderer(templatesDirectory: templates), tokens: machineTokens)
    }

    func makeRouter(machineFiles: MachineFileRenderer? = nil) -> Router<AnvilRequestContext> {
        AdminAPI.makeRouter(
            AdminAPIEnvironment(store: store, machineFiles: machineFiles ?? self.machineFiles(), metricsText: { "anvil_test_metric 1\n" }))
    }

    /// Runs `body` against the router in process (no sockets), then removes the temporary directory.
    static func withAPI<T: Sendable>(seed: Bool = true, _ body: @Sendable (APIClient) async throws -> T) async throws -> T {
        let harness = try await APITestHarness(seed: seed)
        defer {
            harness.store.close()
            harness.directory.remove()
        }
        let app = Application(router: harness.makeRouter())
        return try await app.test(.router) { client in
            try await body(APIClient(client: client, harness: harness))
        }
    }
}

/// A thin client over the Hummingbird test client: bearer tokens, JSON bodies, decoded answers.
struct APIClient: Sendable {
    let client: any TestClientProtocol
    let harness: APITestHarness

    var store: SQLiteInventory { harness.store }

    func request(
        _ method: HTTPRequest.Method, _ path: String, as caller: Caller, body: ByteBuffer? = nil, headers: HTTPFields = [:]
    ) async throws -> APIResponse {
        var fields = headers
        if let secret = harness.secret(for: caller) { fields[.authorization] = "Bearer \(secret)" }
        if body != nil && fields[.contentType] == nil { fields[.contentType] = "application/json" }
        let response = try await client.execute(uri: path, method: method, headers: fields, body: body)
        return APIResponse(status: response.status, headers: response.headers, body: response.body)
    }

    func request(
        _ method: HTTPRequest.Method, _ path: String, as caller: Caller, raw: String?, headers: HTTPFields = [:]
    ) async throws -> APIResponse {
        try await request(method, path, as: caller, body: raw.map { ByteBuffer(string: $0) }, headers: headers)
    }

    func get(_ path: String, as caller: Caller = .viewer, headers: HTTPFields = [:]) async throws -> APIResponse {
        try await request(.get, path, as: caller, headers: headers)
    }

    func post(_ path: String, _ json: JSONValue, as caller: Caller = .operator) async throws -> APIResponse {
        try await request(.post, path, as: caller, raw: json.text)
    }

    func put(_ path: String, _ json: JSONValue, ifMatch: String? = nil, as caller: Caller = .operator) async throws -> APIResponse {
        try await request(.put, path, as: caller, raw: json.text, headers: ifMatch.map { [.ifMatch: $0] } ?? [:])
    }

    func patch(_ path: String, _ json: JSONValue, ifMatch: String? = nil, as caller: Caller = .operator) async throws -> APIResponse {
        var headers: HTTPFields = [.contentType: "application/merge-patch+json"]
        if let ifMatch { headers[.ifMatch] = ifMatch }
        return try await request(.patch, path, as: caller, raw: json.text, headers: headers)
    }

    func delete(_ path: String, ifMatch: String? = nil, as caller: Caller = .operator) async throws -> APIResponse {
        try await request(.delete, path, as: caller, headers: ifMatch.map { [.ifMatch: $0] } ?? [:])
    }

    /// Creates through the API and requires success, for tests whose subject is something else.
    @discardableResult
    func create(_ collection: String, _ json: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        let response = try await post("/api/v1/\(collection)", json)
        #expect(response.status == .created, "POST /\(collection): \(response.text)", sourceLocation: sourceLocation)
        return try #require(response.json, sourceLocation: sourceLocation)
    }
}

/// A response with the body decoded as JSON when it is JSON.
struct APIResponse: Sendable, CustomStringConvertible {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let text: String
    let json: JSONValue?

    init(status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer) {
        self.status = status
        self.headers = headers
        text = String(buffer: body)
        json = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    var etag: String? { headers[.eTag] }
    var error: JSONValue? { json?["error"] }
    var errorCode: String? { error?["code"]?.stringValue }
    var errorField: String? { error?["field"]?.stringValue }
    var problemFields: [String] { error?["problems"]?.arrayValue?.compactMap { $0["field"]?.stringValue } ?? [] }
    var items: [JSONValue] { json?["items"]?.arrayValue ?? [] }

    var description: String { "\(status.code) \(text)" }

    /// The one error shape: a JSON object holding only `error`, with a `code` and a non-empty `message`,
    /// and the status, code and field the caller expects.
    func expectError(
        _ expectedStatus: HTTPResponse.Status, _ expectedCode: String, field expectedField: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(status == expectedStatus, "\(self)", sourceLocation: sourceLocation)
        expectErrorShape(sourceLocation: sourceLocation)
        #expect(errorCode == expectedCode, "\(self)", sourceLocation: sourceLocation)
        if let expectedField {
            #expect(errorField == expectedField, "\(self)", sourceLocation: sourceLocation)
        }
    }

    func expectErrorShape(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(headers[.contentType] == "application/json", "\(self)", sourceLocation: sourceLocation)
        #expect(json?.objectValue?.keys.sorted() == ["error"], "\(self)", sourceLocation: sourceLocation)
        #expect(errorCode?.isEmpty == false, "\(self)", sourceLocation: sourceLocation)
        #expect(error?["message"]?.stringValue?.isEmpty == false, "\(self)", sourceLocation: sourceLocation)
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? { objectValue?[key] }

    subscript(index: Int) -> JSONValue? {
        guard let array = arrayValue, array.indices.contains(index) else { return nil }
        return array[index]
    }


    var intValue: Int64? {
        if case .integer(let number) = self { return number }
        return nil
    }

    /// Compact JSON text, keys sorted.
    var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// The same object without some members (to compare documents apart from what a test changed).
    func removing(_ keys: String...) -> JSONValue {
        guard var members = objectValue else { return self }
        for key in keys { members.removeValue(forKey: key) }
        return .object(members)
    }
}
