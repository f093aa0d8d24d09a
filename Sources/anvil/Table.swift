import Foundation
import ProvisioningModel

/// A plain text table with aligned columns; values are picked from JSON by simple paths
/// (`a.b`, `list[]` for every element, `list[].field`).
struct Table {
    var columns: [(title: String, path: String)]
    var rows: [JSONValue]

    func render() -> String {
        let cells = rows.map { row in columns.map { Self.cell(Self.pick($0.path, from: row)) } }
        let widths = columns.indices.map { index in
            max(columns[index].title.count, cells.map { $0[index].count }.max() ?? 0)
        }
        func line(_ values: [String]) -> String {
            zip(values, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingTrailingSpaces() + "\n"
        }
        return line(columns.map(\.title)) + cells.map(line).joined()
    }

    static func pick(_ path: String, from value: JSONValue) -> JSONValue {
        var current = value
        for segment in path.split(separator: ".") {
            if segment.hasSuffix("[]") {
                let name = String(segment.dropLast(2))
                guard case .array(let elements)? = current.objectValue?[name] else { return .null }
                current = .array(elements)
            } else if case .array(let elements) = current {
                current = .array(elements.map { $0.objectValue?[String(segment)] ?? .null })
            } else {
                current = current.objectValue?[String(segment)] ?? .null
            }
        }
        return current
    }

    static func cell(_ value: JSONValue) -> String {
        switch value {
        case .null: "-"
        case .string(let text): text
        case .integer(let number): String(number)
        case .number(let number): String(number)
        case .bool(let flag): String(flag)
        case .array(let elements): elements.isEmpty ? "-" : elements.map(cell).joined(separator: ",")
        case .object: "{…}"
        }
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
