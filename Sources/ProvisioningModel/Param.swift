/// The type a param's values must have: a small, JSON-schema-like subset that covers what provisioning needs.
public struct ParamSchema: Codable, Sendable, Hashable {
    public enum ValueType: String, Codable, Sendable, CaseIterable {
        case string, integer, number, boolean, array, object, any
    }

    public var type: ValueType
    /// Allowed values, when the param is an enumeration.
    public var `enum`: [JSONValue]?
    public var minimum: Double?
    public var maximum: Double?
    /// A regular expression a string value must match completely.
    public var pattern: String?
    /// Schema of each element, for arrays.
    public var items: ParamSchemaItems?

    public init(
        type: ValueType, enum values: [JSONValue]? = nil, minimum: Double? = nil, maximum: Double? = nil,
        pattern: String? = nil, items: ParamSchema? = nil
    ) {
        self.type = type
        self.enum = values
        self.minimum = minimum
        self.maximum = maximum
        self.pattern = pattern
        self.items = items.map(ParamSchemaItems.init)
    }

    /// Every way `value` breaks the schema; `field` names the value in the messages.
    public func problems(with value: JSONValue, field: String) -> [ValidationProblem] {
        var report = ValidationReport()
        switch (type, value) {
        case (.any, _), (.string, .string), (.integer, .integer), (.number, .integer), (.number, .number),
            (.boolean, .bool), (.array, .array), (.object, .object):
            break
        default:
            report.add(field, "must be \(type == .integer ? "an" : "a") \(type.rawValue), got \(value.typeName)")
            return report.problems
        }
        if let allowed = self.enum {
            report.check(allowed.contains(value), field, "must be one of \(allowed.map(Self.display).joined(separator: ", "))")
        }
        let numeric: Double? =
            switch value {
            case .integer(let number): Double(number)
            case .number(let number): number
            default: nil
            }
        if let numeric, let minimum { report.check(numeric >= minimum, field, "must be at least \(Self.display(minimum))") }
        if let numeric, let maximum { report.check(numeric <= maximum, field, "must be at most \(Self.display(maximum))") }
        if case .string(let text) = value, let pattern, let regex = try? Regex(pattern) {
            report.check((try? regex.wholeMatch(in: text)) != nil, field, "must match /\(pattern)/")
        }
        if case .array(let elements) = value, let items {
            for (index, element) in elements.enumerated() {
                report.merge(items.schema.problems(with: element, field: "\(field)[\(index)]"), under: "")
            }
        }
        return report.problems
    }

    /// Problems with the schema itself.
    func validate(field: String) -> [ValidationProblem] {
        var report = ValidationReport()
        if let pattern { report.check((try? Regex(pattern)) != nil, "\(field).pattern", "'\(pattern)' is not a valid regular expression") }
        if let minimum, let maximum { report.check(minimum <= maximum, "\(field).maximum", "is below minimum") }
        if let allowed = self.enum {
            for (index, value) in allowed.enumerated() {
                let typeOnly = ParamSchema(type: type)
                report.merge(typeOnly.problems(with: value, field: "\(field).enum[\(index)]"), under: "")
            }
        }
        return report.problems
    }

    private static func display(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): "'\(text)'"
        case .integer(let number): String(number)
        case .number(let number): display(number)
        case .bool(let flag): String(flag)
        default: value.typeName
        }
    }

    private static func display(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }
}

/// Boxes the element schema of an array so `ParamSchema` can contain itself.
public final class ParamSchemaItems: Codable, Sendable, Hashable {
    public let schema: ParamSchema

    public init(_ schema: ParamSchema) { self.schema = schema }
    public init(from decoder: any Decoder) throws { schema = try ParamSchema(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try schema.encode(to: encoder) }
    public static func == (lhs: ParamSchemaItems, rhs: ParamSchemaItems) -> Bool { lhs.schema == rhs.schema }
    public func hash(into hasher: inout Hasher) { hasher.combine(schema) }
}

/// A named setting with a type and an optional default; values come from the attribute chain.
public struct Param: InventoryObject, NamedObject {
    public static let kind = ObjectKind.param

    public var name: String
    public var description: String
    public var schema: ParamSchema
    public var `default`: JSONValue?

    public init(name: String, description: String = "", schema: ParamSchema, default defaultValue: JSONValue? = nil) {
        self.name = name
        self.description = description
        self.schema = schema
        self.default = defaultValue
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, description, schema, `default` }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        schema = try c.decode(.schema, default: ParamSchema(type: .any))
        `default` = try c.decodeIfPresent(JSONValue.self, forKey: .default)
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        report.merge(schema.validate(field: "schema"), under: "")
        if let defaultValue = `default` { report.merge(schema.problems(with: defaultValue, field: "default"), under: "") }
        return report.problems
    }
}

/// A named set of param values. The profile named `global` applies to every machine.
public struct Profile: InventoryObject, NamedObject {
    public static let kind = ObjectKind.profile
    public static let globalName = "global"

    public var name: String
    public var description: String
    public var params: [String: JSONValue]

    public init(name: String, description: String = "", params: [String: JSONValue] = [:]) {
        self.name = name
        self.description = description
        self.params = params
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, description, params }
    public static var fieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decode(.description, default: "")
        params = try c.decode(.params, default: [:])
    }

    public func validate() -> [ValidationProblem] {
        var report = ValidationReport()
        report.checkName(name)
        return report.problems
    }

    public var paramValues: [String: JSONValue] { params }
}
