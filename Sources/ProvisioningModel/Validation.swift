/// One thing wrong with an object, and the field (a JSON path such as `interfaces[1].mac`) at fault.
public struct ValidationProblem: Hashable, Sendable, Codable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Collects every problem with an object instead of stopping at the first, so a user fixes them all in one go.
public struct ValidationReport: Sendable {
    public private(set) var problems: [ValidationProblem] = []

    public init() {}

    public mutating func add(_ field: String, _ message: String) {
        problems.append(ValidationProblem(field: field, message: message))
    }

    public mutating func check(_ condition: Bool, _ field: String, _ message: @autoclosure () -> String) {
        if !condition { add(field, message()) }
    }

    public mutating func merge(_ other: [ValidationProblem], under prefix: String) {
        for problem in other {
            add(prefix.isEmpty ? problem.field : "\(prefix).\(problem.field)", problem.message)
        }
    }

    /// Object names: what DNS labels and file names can carry safely (bootenv names end up in URLs and paths).
    public mutating func checkName(_ name: String, field: String = "name") {
        if name.isEmpty {
            add(field, "must not be empty")
        } else if !Self.isValidName(name) {
            add(field, "'\(name)' must be 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
    }

    public mutating func checkNames(_ names: [String], field: String) {
        for (index, name) in names.enumerated() { checkName(name, field: "\(field)[\(index)]") }
    }

    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 63,
            first.properties.isASCIIHexDigit || ("a"..."z").contains(first) || ("A"..."Z").contains(first)
        else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "." || scalar == "_" || scalar == "-"
        }
    }
}
