import Foundation
import HTTPTypes
import ProvisioningModel

/// Builds the OpenAPI 3.1 document from the route catalog.
enum OpenAPIDocument {
    static func make(operations: [APIOperation], version: String) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        for operation in operations {
            var pathItem = paths[operation.path]?.objectValue ?? [:]
            var parameters: [JSONValue] = pathParameters(in: operation.path).map { name in
                ["name": .string(name), "in": "path", "required": true, "schema": ["type": "string"]]
            }
            parameters += operation.queryParameters.map { name in
                ["name": .string(name), "in": "query", "required": false, "schema": ["type": "string"]]
            }
            var responses: [String: JSONValue] = [
                "default": ["description": "An error", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
            ]
            responses[successStatus(operation.method)] = ["description": "Success"]
            var entry: [String: JSONValue] = [
                "summary": .string(operation.summary),
                "operationId": .string(operationID(operation)),
                "tags": [.string(operation.tag)],
                "parameters": .array(parameters),
                "responses": .object(responses),
            ]
            if let role = operation.role {
                entry["security"] = [["bearer": []]]
                entry["x-anvil-role"] = .string(role.rawValue)
            } else {
                entry["security"] = []
            }
            if let schema = operation.requestSchema {
                entry["requestBody"] = [
                    "required": true,
                    "content": [
                        (operation.method == .patch ? "application/merge-patch+json" : "application/json"):
                            ["schema": ["$ref": .string("#/components/schemas/\(schema)")]]
                    ],
                ]
            }
            pathItem[operation.method.rawValue.lowercased()] = .object(entry)
            paths[operation.path] = .object(pathItem)
        }
        var schemas: [String: JSONValue] = [
            "Error": [
                "type": "object", "required": ["error"],
                "properties": [
                    "error": [
                        "type": "object", "required": ["code", "message"],
                        "properties": [
                            "code": ["type": "string"], "message": ["type": "string"], "field": ["type": "string"],
                            "problems": ["type": "array", "items": ["type": "object"]],
                        ],
                    ]
                ],
            ],
            "TokenRequest": [
                "type": "object", "required": ["name", "role"],
                "properties": [
                    "name": ["type": "string"], "role": ["type": "string", "enum": .array(Role.allCases.map { .string($0.rawValue) })],
                    "expiresInSeconds": ["type": "integer"],
                ],
            ],
        ]
        for kind in ObjectKind.allCases {
            schemas[schemaName(kind)] = ["type": "object", "properties": .object(Dictionary(uniqueKeysWithValues: fields(kind).map { ($0, [:]) }))]
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "Anvil provisioning API", "version": .string(version)],
            "paths": .object(paths),
            "components": [
                "schemas": .object(schemas),
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
            ],
        ]
    }

    static func schemaName(_ kind: ObjectKind) -> String {
        kind == .bootenv ? "BootEnv" : kind.rawValue.prefix(1).uppercased() + kind.rawValue.dropFirst()
    }

    private static func fields(_ kind: ObjectKind) -> [String] {
        let names: Set<String> =
            switch kind {
            case .machine: Machine.fieldNames
            case .subnet: Subnet.fieldNames
            case .reservation: Reservation.fieldNames
            case .bootenv: BootEnv.fieldNames
            case .param: Param.fieldNames
            case .profile: Profile.fieldNames
            case .task: TaskDefinition.fieldNames
            case .stage: Stage.fieldNames
            case .workflow: Workflow.fieldNames
            case .job: Job.fieldNames
            case .lease: Lease.fieldNames
            }
        return names.sorted() + ["meta"]
    }

    private static func pathParameters(in path: String) -> [String] {
        path.split(separator: "/").compactMap { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? String(segment.dropFirst().dropLast()) : nil
        }
    }

    private static func successStatus(_ method: HTTPRequest.Method) -> String {
        switch method {
        case .post: "201"
        case .delete: "204"
        default: "200"
        }
    }

    private static func operationID(_ operation: APIOperation) -> String {
        let words = operation.path.split(separator: "/").dropFirst(2).map { segment -> String in
            segment.hasPrefix("{") ? "By" + segment.dropFirst().dropLast().capitalized : segment.capitalized
        }
        return operation.method.rawValue.lowercased() + words.joined()
    }
}
