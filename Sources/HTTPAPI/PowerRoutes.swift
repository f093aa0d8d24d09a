import Foundation
import Hummingbird
import NetworkPrimitives
import ProvisioningModel

/// BMC records, power commands and sensors. A BMC password goes in with `PUT …/bmc` and never
/// comes out: responses say only that one is set.
struct PowerRoutes {
    let store: any InventoryStore
    let operations: PowerOperations

    /// The body of `PUT machines/{key}/bmc` (which names the BMC's `address`) and of
    /// `PUT bmc-credential-sets/{name}` (which names a `network`).
    struct BMCLoginRequest: Decodable {
        var address: String?
        var network: String?
        var port: Int?
        var username: String
        var password: String
        var cipherSuite: Int?
        var workarounds: [String]?

        /// Decodes the body, which must carry `place` (`address` or `network`) and not the other.
        static func decode(_ request: Request, place: String) async throws -> (login: Self, place: String) {
            let known: Set<String> = ["port", "username", "password", "cipherSuite", "workarounds", place]
            let login = try RequestBody.decode(Self.self, from: try await RequestBody.json(request), knownFields: known)
            guard let value = place == "address" ? login.address : login.network else {
                throw APIError(.unprocessableContent, code: "invalid", message: "\(place) is required", field: place)
            }
            return (login, value)
        }

        func endpoint(address: String) -> BMCEndpoint {
            BMCEndpoint(
                address: address, port: port ?? 623, username: username, password: password,
                cipherSuite: UInt8(clamping: cipherSuite ?? 17),
                workarounds: workarounds ?? [])
        }
    }

    /// What the API shows of a BMC.
    struct BMCView: Encodable {
        var address: String
        var port: Int
        var username: String
        var passwordSet = true
        var cipherSuite: Int
        var workarounds: [String]
        var expectedPower: PowerState?
        var observedPower: PowerState?
        var observedAt: Date?
        var updatedAt: Date

        init(_ credential: StoredBMCCredential) {
            address = credential.address
            port = credential.port
            username = credential.username
            cipherSuite = Int(credential.cipherSuite)
            workarounds = credential.workarounds
            expectedPower = credential.expectedPower
            observedPower = credential.observedPower
            observedAt = credential.observedAt
            updatedAt = credential.updatedAt
        }
    }

    /// `POST power`: one command for many machines.
    struct PowerRequest: Decodable {
        /// A `PowerAction`, or `boot` with `boot` set.
        var action: String
        var machines: [String]
        var boot: BootOverride?
        static let fields: Set<String> = ["action", "machines", "boot"]
    }

    struct CredentialSetView: Encodable {
        var name: String
        var network: String
        var port: Int
        var username: String
        var passwordSet = true
        var cipherSuite: Int
        var workarounds: [String]
        var updatedAt: Date

        init(_ set: StoredBMCCredentialSet) {
            name = set.name
            network = set.network.description
            port = set.port
            username = set.username
            cipherSuite = Int(set.cipherSuite)
            workarounds = set.workarounds
            updatedAt = set.updatedAt
        }
    }

    func register(in catalog: RouteCatalog) {
        catalog.add(
            .put, "bmc-credential-sets/{name}", role: .admin, tag: "power",
            summary: "Credentials for every BMC in a network: attached to machines whose agent reports a BMC address in it"
        ) {
            request, context in
            let name = try context.parameters.require("name")
            let (login, network) = try await BMCLoginRequest.decode(request, place: "network")
            try await operations.saveCredentialSet(name: name, network: network, endpoint: login.endpoint(address: ""))
            let saved = try await store.bmcCredentialSets().first { $0.name == name }
            return try JSONResponse.make(saved.map(CredentialSetView.init))
        }
        catalog.add(
            .get, "bmc-credential-sets", role: .viewer, tag: "power", summary: "BMC credential sets (never their passwords)"
        ) { _, _ in
            try JSONResponse.make(["items": try await store.bmcCredentialSets().map(CredentialSetView.init)])
        }
        catalog.add(.delete, "bmc-credential-sets/{name}", role: .admin, tag: "power", summary: "Remove a BMC credential set") {
            _, context in
            try await store.deleteBMCCredentialSet(name: try context.parameters.require("name"))
            return Response(status: .noContent)
        }
        catalog.add(
            .put, "machines/{key}/bmc", role: .admin, tag: "power",
            summary:
                "Attach a BMC (address, username, password, cipher suite 17 or 3) to the machine; the password is stored sealed"
        ) {
            request, context in
            let machine = try await lookUpMachine(try context.parameters.require("key"), in: store, field: "key")
            let (login, address) = try await BMCLoginRequest.decode(request, place: "address")
            try await operations.attachBMC(login.endpoint(address: address), to: machine.object.id)
            return try JSONResponse.make(BMCView(try await credential(of: machine.object.id.description)))
        }
        catalog.add(.get, "machines/{key}/bmc", role: .viewer, tag: "power", summary: "The machine's BMC (never its password)") {
            _, context in
            try JSONResponse.make(BMCView(try await credential(of: try context.parameters.require("key"))))
        }
        catalog.add(
            .get, "machines/{key}/bmc/info", role: .viewer, tag: "power",
            summary: "Ask the machine's BMC who it is now: device ID, firmware, IPMI version, manufacturer, product"
        ) { _, context in
            let credential = try await credential(of: try context.parameters.require("key"))
            do {
                return try JSONResponse.make(try await operations.power.info(of: try operations.endpoint(of: credential)))
            } catch let error as PowerError {
                throw Self.apiError(error)
            }
        }
        catalog.add(.delete, "machines/{key}/bmc", role: .admin, tag: "power", summary: "Forget the machine's BMC") {
            _, context in
            let machine = try await lookUpMachine(try context.parameters.require("key"), in: store, field: "key")
            try await store.deleteBMCCredential(machine: machine.object.id)
            return Response(status: .noContent)
        }
        catalog.add(
            .post, "power", role: .operator, tag: "power",
            summary:
                "Run a power action (status, on, off, soft-off, cycle, reset, identify, or boot with a boot override) on machines"
        ) {
            request, context in
            let body = try RequestBody.decode(
                PowerRequest.self, from: try await RequestBody.json(request), knownFields: PowerRequest.fields)
            let command = try Self.command(body)
            guard !body.machines.isEmpty else {
                throw APIError.badRequest("invalid", "name at least one machine", field: "machines")
            }
            var machines: [Stored<Machine>] = []
            for (index, reference) in body.machines.enumerated() {
                machines.append(try await lookUpMachine(reference, in: store, field: "machines[\(index)]"))
            }
            let results = await operations.run(command, on: machines, actor: actor(context))
            return try JSONResponse.make(["results": results])
        }
        catalog.add(
            .get, "machines/{key}/power", role: .viewer, tag: "power", summary: "The machine's power operations, oldest first",
            query: ["limit"]
        ) { request, context in
            let machine = try await lookUpMachine(try context.parameters.require("key"), in: store, field: "key")
            let limit = min(1000, max(1, Int(request.uri.queryParameters["limit"].map(String.init) ?? "100") ?? 100))
            return try JSONResponse.make(["items": try await store.powerOperations(machine: machine.object.id, limit: limit)])
        }
        catalog.add(
            .get, "machines/{key}/sensors", role: .viewer, tag: "power",
            summary: "The machine's latest sensor readings; ?refresh=true reads the BMC now", query: ["refresh"]
        ) { request, context in
            let machine = try await lookUpMachine(try context.parameters.require("key"), in: store, field: "key")
            if request.uri.queryParameters["refresh"] == "true" {
                do {
                    return try JSONResponse.make(try await operations.readSensors(of: machine.object.id))
                } catch let error as PowerError {
                    throw Self.apiError(error)
                }
            }
            guard let snapshot = try await store.sensorSnapshot(machine: machine.object.id) else {
                throw APIError(
                    .notFound, code: "not_found",
                    message: "no sensor readings for '\(machine.object.name)' yet; ask with ?refresh=true")
            }
            return try JSONResponse.make(snapshot)
        }
    }

    /// The BMC of the machine `reference` names (id or name); 404 when it has none.
    private func credential(of reference: String) async throws -> StoredBMCCredential {
        let machine = try await lookUpMachine(reference, in: store, field: "key")
        guard let credential = try await store.bmcCredential(machine: machine.object.id) else {
            throw APIError(.notFound, code: "not_found", message: "machine \(machine.object.name) has no BMC")
        }
        return credential
    }

    static func command(_ body: PowerRequest) throws -> PowerOperations.Command {
        if body.action == "boot" {
            guard let boot = body.boot else {
                throw APIError.badRequest(
                    "invalid", "action 'boot' needs a boot override such as {\"device\": \"pxe\"}", field: "boot")
            }
            return .boot(boot)
        }
        guard let action = PowerAction(rawValue: body.action) else {
            let known = (PowerAction.allCases.map(\.rawValue) + ["boot"]).joined(separator: ", ")
            throw APIError.badRequest("invalid", "'\(body.action)' is not a power action (one of \(known))", field: "action")
        }
        guard body.boot == nil else { throw APIError.badRequest("invalid", "boot is only for action 'boot'", field: "boot") }
        return .power(action)
    }

    /// A BMC's failure is not the API caller's fault, nor Anvil's: 502, with the BMC's reason.
    static func apiError(_ error: PowerError) -> APIError {
        APIError(
            .badGateway, code: "bmc_" + error.code.rawValue.replacingOccurrences(of: "-", with: "_"), message: error.description)
    }
}
