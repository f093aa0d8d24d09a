import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ProvisioningModel

/// How to reach the admin API: flags, then environment variables, then a local server's data directory.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "Admin API URL, e.g. https://127.0.0.1:8443 (env ANVIL_ENDPOINT).")
    var endpoint: String?

    @Option(name: .long, help: "API token (env ANVIL_TOKEN). Prefer --token-file: command lines are visible to other users.")
    var token: String?

    @Option(name: .long, help: "File holding the API token (env ANVIL_TOKEN_FILE).")
    var tokenFile: String?

    @Option(name: .long, help: "CA certificate (PEM) that signed the admin API certificate (env ANVIL_CA_CERT).")
    var caCert: String?

    @Flag(name: .long, help: "Do not verify the server certificate.")
    var insecure = false

    @Option(name: .long, help: "Data directory of a local server, for defaults (env ANVIL_DATA_DIR, default ./anvil-data).")
    var dataDir: String?

    @Flag(name: .long, help: "Print JSON instead of tables.")
    var json = false

    func client() throws -> APIClient {
        let environment = ProcessInfo.processInfo.environment
        let data = URL(fileURLWithPath: dataDir ?? environment["ANVIL_DATA_DIR"] ?? "./anvil-data")
        func readFile(_ path: String) -> String? {
            (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let listeners = (try? Data(contentsOf: data.appendingPathComponent("listeners.json")))
            .flatMap { try? JSONDecoder().decode([String: String].self, from: $0) }
        guard let base = endpoint ?? environment["ANVIL_ENDPOINT"] ?? listeners?["admin"] else {
            throw ValidationError("no admin API endpoint: pass --endpoint, set ANVIL_ENDPOINT, or run next to a server's data directory")
        }
        let tokenValue =
            token ?? tokenFile.flatMap(readFile) ?? environment["ANVIL_TOKEN"] ?? environment["ANVIL_TOKEN_FILE"].flatMap(readFile)
            ?? readFile(data.appendingPathComponent("admin.token").path)
        var tls = TLSConfiguration.makeClientConfiguration()
        let caPath = caCert ?? environment["ANVIL_CA_CERT"] ?? {
            let local = data.appendingPathComponent("tls/ca.pem").path
            return FileManager.default.fileExists(atPath: local) ? local : nil
        }()
        if let caPath {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
            } catch {
                throw ValidationError("cannot read CA certificate \(caPath): \(error)")
            }
        }
        if insecure { tls.certificateVerification = .none }
        return APIClient(base: base.hasSuffix("/") ? String(base.dropLast()) : base, token: tokenValue, tls: tls)
    }
}

/// A failed API call, carrying the server's error code, message and field.
struct APICallError: Error, CustomStringConvertible {
    var status: Int
    var code: String
    var message: String
    var field: String?
    var problems: [ValidationProblem] = []

    var description: String {
        var text = "\(message) [\(code)\(field.map { ", field \($0)" } ?? "")]"
        if problems.count > 1 { text += problems.map { "\n  \($0.field): \($0.message)" }.joined() }
        return text
    }

    var exitCode: Int32 {
        switch status {
        case 401, 403: 3
        case 404: 4
        case 409, 412: 5
        case 400, 413, 422: 6
        case 0: 7
        default: 1
        }
    }
}

/// The admin API over AsyncHTTPClient.
struct APIClient {
    let base: String
    let token: String?
    let tls: TLSConfiguration

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
        var json: JSONValue { (try? JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))) ?? .null }
    }

    func withHTTPClient<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func request(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, headers extra: [(String, String)] = []) async throws -> Reply {
        try await withHTTPClient { client in
            let request = try makeRequest(method, path, body: body, headers: extra)
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: .seconds(60))
            } catch {
                throw APICallError(status: 0, code: "unreachable", message: "cannot reach \(base): \(error)")
            }
            let buffer = try await response.body.collect(upTo: 256 << 20)
            let reply = Reply(status: Int(response.status.code), headers: response.headers, body: buffer)
            guard (200..<300).contains(reply.status) else { throw Self.error(from: reply) }
            return reply
        }
    }

    func makeRequest(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, headers extra: [(String, String)] = []) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: method == .PATCH ? "application/merge-patch+json" : "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        }
        return request
    }

    static func error(from reply: Reply) -> APICallError {
        let detail = reply.json.objectValue?["error"]?.objectValue ?? [:]
        let problems = (try? JSONDecoder().decode([ValidationProblem].self, from: JSONEncoder().encode(detail["problems"] ?? .array([])))) ?? []
        return APICallError(
            status: reply.status, code: detail["code"]?.stringValue ?? "http_\(reply.status)",
            message: detail["message"]?.stringValue ?? "the server answered HTTP \(reply.status)",
            field: detail["field"]?.stringValue, problems: problems)
    }
}

/// Runs a CLI action, turning API errors into a message on stderr and the documented exit code.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as APICallError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(error.exitCode)
    }
}
