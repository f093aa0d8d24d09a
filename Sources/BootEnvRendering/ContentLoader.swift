import Foundation
import ProvisioningModel
import Yams

/// One thing wrong with a content file, pinned to its line when the YAML says where.
public struct ContentProblem: Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var message: String

    public var description: String { line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)" }
}

/// What was read from the content directories: objects ready for the store, and the files (or
/// documents) that were refused. A bad file never stops the others from loading.
public struct LoadedContent: Sendable {
    public var objects: [ContentObject] = []
    public var problems: [ContentProblem] = []
}

/// Reads the content the project ships: `bootenvs/*.yaml` (one boot environment per file) and
/// `templates/content/*.yaml` (tasks, stages, workflows, profiles, params; each YAML document names
/// its `kind`). File names in reports are relative to `root`.
public struct ContentLoader: Sendable {
    public var root: URL

    public init(root: URL) { self.root = root }

    public var bootEnvsDirectory: URL { root.appendingPathComponent("bootenvs") }
    public var contentDirectory: URL { root.appendingPathComponent("templates/content") }

    public func load() -> LoadedContent {
        var loaded = LoadedContent()
        for file in yamlFiles(in: bootEnvsDirectory) {
            read(file, into: &loaded, defaultKind: .bootenv)
        }
        for file in yamlFiles(in: contentDirectory) {
            read(file, into: &loaded, defaultKind: nil)
        }
        return loaded
    }

    private func yamlFiles(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { directory.appendingPathComponent($0) }
    }

    private func read(_ file: URL, into loaded: inout LoadedContent, defaultKind: ObjectKind?) {
        let name = relativeName(file)
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            loaded.problems.append(ContentProblem(file: name, line: nil, message: "cannot be read as UTF-8 text"))
            return
        }
        var documents: [Node] = []
        do {
            // compose_all reports syntax errors through the sequence's `error`, not by throwing.
            var sequence = try compose_all(yaml: text)
            while let document = sequence.next() { documents.append(document) }
            if let error = sequence.error { throw error }
        } catch {
            loaded.problems.append(ContentProblem(file: name, line: Self.line(of: error), message: "invalid YAML: \(error)"))
            return
        }
        for document in documents {
            do {
                let object = try Self.decodeObject(document, defaultKind: defaultKind)
                loaded.objects.append(ContentObject(object: object, source: name))
            } catch let problem as LocatedProblem {
                loaded.problems.append(ContentProblem(file: name, line: problem.line, message: problem.message))
            } catch {
                loaded.problems.append(ContentProblem(file: name, line: document.mark?.line, message: "\(error)"))
            }
        }
    }

    private func relativeName(_ file: URL) -> String {
        let rootPath = root.standardizedFileURL.path + "/"
        let path = file.standardizedFileURL.path
        return path.hasPrefix(rootPath) ? String(path.dropFirst(rootPath.count)) : path
    }

    struct LocatedProblem: Error {
        var line: Int?
        var message: String
    }

    /// Decodes one YAML document into the object its `kind` names, checking for unknown fields.
    static func decodeObject(_ document: Node, defaultKind: ObjectKind?) throws -> any InventoryObject {
        guard let mapping = document.mapping else {
            throw LocatedProblem(line: document.mark?.line, message: "a content document must be a mapping of fields")
        }
        var kind = defaultKind
        if let kindNode = mapping["kind"] {
            guard let named = kindNode.string.flatMap(ObjectKind.init(rawValue:)), named.isUserWritable, named != .machine else {
                throw LocatedProblem(
                    line: kindNode.mark?.line,
                    message: "kind '\(kindNode.string ?? "")' cannot be shipped as content (bootenv, param, profile, task, stage, workflow, subnet)")
            }
            kind = named
        }
        guard let kind else {
            throw LocatedProblem(line: document.mark?.line, message: "the document needs a 'kind' (task, stage, workflow, profile, param)")
        }
        var fields = mapping
        fields["kind"] = nil
        let body = Node.mapping(fields)
        switch kind {
        case .bootenv: return try decode(BootEnv.self, body)
        case .param: return try decode(Param.self, body)
        case .profile: return try decode(Profile.self, body)
        case .task: return try decode(TaskDefinition.self, body)
        case .stage: return try decode(Stage.self, body)
        case .workflow: return try decode(Workflow.self, body)
        case .subnet: return try decode(Subnet.self, body)
        case .machine, .reservation, .job, .lease:
            throw LocatedProblem(line: document.mark?.line, message: "kind '\(kind.rawValue)' cannot be shipped as content")
        }
    }

    private static func decode<O: InventoryObject>(_ type: O.Type, _ node: Node) throws -> O {
        for (key, _) in node.mapping ?? [:] {
            if let name = key.string, !O.fieldNames.contains(name) {
                throw LocatedProblem(
                    line: key.mark?.line,
                    message: "unknown field '\(name)' for a \(O.kind.rawValue) (known: \(O.fieldNames.sorted().joined(separator: ", ")))")
            }
        }
        let object: O
        do {
            object = try YAMLDecoder().decode(O.self, from: node)
        } catch let error as DecodingError {
            let (path, line) = locate(error, in: node)
            throw LocatedProblem(line: line, message: "\(path.isEmpty ? "" : path + ": ")\(reason(error))")
        }
        if let problem = object.validate().first {
            let more = object.validate().count - 1
            throw LocatedProblem(
                line: node.mapping?[problem.field.split(separator: ".").first.map { String($0.split(separator: "[").first ?? $0) } ?? ""]?.mark?.line
                    ?? node.mark?.line,
                message: "\(problem)" + (more > 0 ? " (and \(more) more)" : ""))
        }
        return object
    }

    /// The JSON-style path of a decoding error and the line of the deepest node it reaches.
    private static func locate(_ error: DecodingError, in root: Node) -> (String, Int?) {
        var keys: [any CodingKey] = []
        switch error {
        case .keyNotFound(let key, let context): keys = context.codingPath + [key]
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context): keys = context.codingPath
        @unknown default: break
        }
        var node: Node? = root
        var line = root.mark?.line
        var path = ""
        for key in keys {
            if let index = key.intValue {
                path += "[\(index)]"
                node = node?.sequence.flatMap { index < $0.count ? $0[index] : nil }
            } else {
                path += path.isEmpty ? key.stringValue : ".\(key.stringValue)"
                node = node?.mapping?[key.stringValue]
            }
            if let mark = node?.mark { line = mark.line }
        }
        return (path, line)
    }

    private static func reason(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound: "is required"
        case .typeMismatch(let type, _): "has the wrong type (expected \(type))"
        case .valueNotFound(let type, _): "must not be empty (expected \(type))"
        case .dataCorrupted(let context): context.debugDescription
        @unknown default: "\(error)"
        }
    }

    private static func line(of error: any Error) -> Int? {
        guard let yamlError = error as? YamlError else { return nil }
        switch yamlError {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }
}
