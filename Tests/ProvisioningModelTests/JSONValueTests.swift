import Foundation
import ProvisioningModel
import Testing

private func json(_ text: String) throws -> JSONValue {
    try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
}

private func text(_ value: JSONValue) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

@Suite("JSONValue")
struct JSONValueTests {
    @Test("decodes each JSON type into its own case", arguments: [
        ("null", JSONValue.null),
        ("true", .bool(true)),
        ("false", .bool(false)),
        ("0", .integer(0)),
        ("1", .integer(1)),
        ("-42", .integer(-42)),
        ("9007199254740993", .integer(9_007_199_254_740_993)),
        ("1.5", .number(1.5)),
        ("-0.25", .number(-0.25)),
        ("\"1\"", .string("1")),
        ("\"true\"", .string("true")),
        ("[]", .array([])),
        ("{}", .object([:])),
        (#"[1, 1.5, "x", null, false]"#, .array([.integer(1), .number(1.5), .string("x"), .null, .bool(false)])),
        (#"{"a": {"b": [true]}}"#, .object(["a": .object(["b": .array([.bool(true)])])])),
    ])
    func decodes(_ source: String, _ expected: JSONValue) throws {
        #expect(try json(source) == expected)
    }

    @Test("round-trips through JSON keeping integers and fractional numbers distinct", arguments: [
        JSONValue.integer(3),
        .integer(Int64.max),
        .integer(Int64.min),
        .number(3.5),
        .number(-1e-3),
        .string("héllo \"quoted\""),
        .bool(true),
        .null,
        .array([.integer(1), .number(2.5), .array([])]),
        .object(["count": .integer(2), "ratio": .number(0.5), "nested": .object(["x": .null])]),
    ])
    func roundTrip(_ value: JSONValue) throws {
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == value)
    }

    @Test("encodes integers without a fractional part")
    func integerEncoding() throws {
        #expect(try text(.object(["n": .integer(7), "x": .number(7.25)])) == #"{"n":7,"x":7.25}"#)
    }

    @Test("literals build the matching cases")
    func literals() {
        let value: JSONValue = ["s": "text", "i": 1, "d": 1.5, "b": true, "a": [1, nil]]
        #expect(value == .object([
            "s": .string("text"), "i": .integer(1), "d": .number(1.5), "b": .bool(true),
            "a": .array([.integer(1), .null]),
        ]))
    }

    @Test("names the JSON type, as param schemas do", arguments: [
        (JSONValue.null, "null"), (.bool(true), "boolean"), (.integer(1), "integer"), (.number(1.5), "number"),
        (.string(""), "string"), (.array([]), "array"), (.object([:]), "object"),
    ])
    func typeName(_ value: JSONValue, _ name: String) {
        #expect(value.typeName == name)
    }
}

@Suite("JSON merge patch (RFC 7386)")
struct MergePatchTests {
    /// RFC 7386 Appendix A, every example: original, patch, result.
    static let appendixA: [(original: String, patch: String, result: String)] = [
        (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
        (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
        (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
        (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
        (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
        (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
        (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
        (#"{"a":"foo"}"#, #"null"#, #"null"#),
        (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
        (#"{"e":null}"#, #"{"a":1}"#, #"{"e":null,"a":1}"#),
        (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
        (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
    ]

    @Test("applies every example of RFC 7386 Appendix A", arguments: appendixA)
    func appendixExample(_ original: String, _ patch: String, _ result: String) throws {
        #expect(try json(original).merging(patch: json(patch)) == json(result))
    }

    @Test("an empty patch object changes nothing")
    func emptyPatch() throws {
        let original = try json(#"{"a":1,"b":{"c":[1,2]}}"#)
        #expect(original.merging(patch: .object([:])) == original)
    }

    @Test("deleting a member that does not exist is not an error")
    func deleteMissing() throws {
        #expect(try json(#"{"a":1}"#).merging(patch: json(#"{"zz":null}"#)) == json(#"{"a":1}"#))
    }
}
