import Foundation
import Stencil
import Synchronization

/// Template files and their parsed form, kept between renders: reading, lexing and parsing a template
/// costs far more than rendering it, and thousands of machines boot from the same few templates.
///
/// A template edited on disk is live within `recheckInterval`: the known files are checked (modification
/// time and size) at most that often, and `generation` counts the changes seen, so caches of rendered
/// output can tell they are stale.
final class TemplateCache: Sendable {
    /// A template's text, parsed once. Stencil's nodes are not marked Sendable, but nothing changes
    /// them after parsing; every render gets a `Context` of its own.
    struct Parsed: @unchecked Sendable {
        let nodes: Result<[any NodeType], RenderError>
        /// The `{{ … }}` and `{% … %}` tags with their line numbers, for the strict variable check.
        let tags: [TemplateTag]
    }

    private struct FileEntry {
        var text: String?
        var stamp: FileStamp?
    }

    private struct State {
        var files: [String: FileEntry] = [:]
        var parsed: [String: Parsed] = [:]
        var generation = 0
        var lastCheck = ContinuousClock.now
    }

    let templatesDirectory: String
    let recheckInterval: Duration
    /// The one Stencil environment renders use (its loader reads through this cache). Stencil does not
    /// mark it Sendable; renders only read it.
    nonisolated(unsafe) private(set) var environment = Environment()
    /// Rendered texts (kernel arguments, declared paths) are templates too; a definition with an
    /// endless supply of different texts must not grow the cache without bound.
    static let parsedLimit = 4096
    private let state = Mutex(State())

    init(templatesDirectory: String, recheckInterval: Duration = .seconds(1)) {
        self.templatesDirectory = templatesDirectory
        self.recheckInterval = recheckInterval
        environment = Environment(loader: CachedTemplateLoader(cache: self))
    }

    /// Changes seen to template files so far; checks the files first when a check is due.
    var generation: Int {
        recheckIfDue()
        return state.withLock { $0.generation }
    }

    /// The text of the template file at `path` (relative to the templates directory), nil when there is none.
    func text(of path: String) -> String? {
        recheckIfDue()
        if let entry = state.withLock({ $0.files[path] }) { return entry.text }
        let file = templatesDirectory + "/" + path
        let entry = FileEntry(text: try? String(contentsOfFile: file, encoding: .utf8), stamp: FileStamp(path: file))
        state.withLock { $0.files[path] = entry }
        return entry.text
    }

    /// `text` lexed, parsed and scanned for tags; the same text is parsed only once.
    func parsed(_ text: String, name: String) -> Parsed {
        if let parsed = state.withLock({ $0.parsed[text] }) { return parsed }
        let nodes: Result<[any NodeType], RenderError>
        do {
            let template = Template(templateString: text, environment: environment, name: name)
            nodes = .success(try TokenParser(tokens: template.tokens, environment: environment).parse())
        } catch {
            nodes = .failure(RenderError(template: name, message: "\(error)"))
        }
        let parsed = Parsed(nodes: nodes, tags: TemplateTag.scan(text))
        state.withLock { state in
            if state.parsed.count >= Self.parsedLimit { state.parsed.removeAll() }
            state.parsed[text] = parsed
        }
        return parsed
    }

    private func recheckIfDue() {
        let now = ContinuousClock.now
        let due = state.withLock { state -> [String: FileEntry]? in
            guard now - state.lastCheck >= recheckInterval else { return nil }
            state.lastCheck = now
            return state.files
        }
        guard let files = due else { return }
        let changed = files.filter { path, entry in FileStamp(path: templatesDirectory + "/" + path) != entry.stamp }.map(\.key)
        guard !changed.isEmpty else { return }
        state.withLock { state in
            for path in changed { state.files[path] = nil }
            state.generation += 1
        }
    }
}

/// What tells a changed file: its modification time and size.
struct FileStamp: Equatable {
    var modified: timespec
    var size: Int

    init?(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        modified = status.st_mtim
        size = Int(status.st_size)
    }

    static func == (left: FileStamp, right: FileStamp) -> Bool {
        left.modified.tv_sec == right.modified.tv_sec && left.modified.tv_nsec == right.modified.tv_nsec
            && left.size == right.size
    }
}

/// A `{{ … }}` or `{% … %}` tag of a template, with the line it starts on and what the strict variable
/// check needs of it: the variables it reads, the loop variables it binds, the template it includes.
struct TemplateTag: Sendable {
    var line: Int
    var variables: [String] = []
    var loopVariables: [String] = []
    var include: String?

    init(line: Int, isVariable: Bool, body: String) {
        self.line = line
        var expressions: [String] = []
        if isVariable {
            expressions = [body]
        } else {
            let words = body.split(separator: " ").map(String.init)
            switch words.first {
            case "for" where words.count >= 4 && words[2] == "in":
                expressions = [words[3]]
                loopVariables = words[1].split(separator: ",").map(String.init)
            case "if", "elif":
                expressions = words.dropFirst().filter {
                    !["and", "or", "not", "==", "!=", "<", ">", "<=", ">=", "in"].contains($0)
                }
            case "include":
                include = words.dropFirst().first.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) } ?? ""
            default:
                break
            }
        }
        for expression in expressions {
            let parts = expression.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            // `{{ params.domain|default:"" }}` says in the template that the value may be missing.
            if parts.dropFirst().contains(where: { $0.hasPrefix("default") }) { continue }
            let path = parts.first ?? ""
            guard !path.isEmpty, path.first != "\"", path.first != "'", Double(path) == nil else { continue }
            variables.append(path)
        }
    }

    static func scan(_ text: String) -> [TemplateTag] {
        var result: [TemplateTag] = []
        var rest = text[...]
        var line = 1
        var counted = text.startIndex
        while let open = rest.range(of: "{") {
            let after = rest[open.upperBound...]
            guard let marker = after.first, marker == "{" || marker == "%" else {
                rest = after
                continue
            }
            let close = marker == "{" ? "}}" : "%}"
            guard let end = after.dropFirst().range(of: close) else { break }
            let body = after[after.index(after: after.startIndex)..<end.lowerBound].trimmingCharacters(in: .whitespaces)
            line += text[counted..<open.lowerBound].filter { $0 == "\n" }.count
            counted = open.lowerBound
            result.append(TemplateTag(line: line, isVariable: marker == "{", body: body))
            rest = after[end.upperBound...]
        }
        return result
    }
}

/// Hands Stencil's `{% include %}` the cached template files.
/// Unowned: the cache holds the environment that holds this loader, and a strong reference back
/// would keep every cache alive for good.
struct CachedTemplateLoader: Loader {
    unowned let cache: TemplateCache

    func loadTemplate(name: String, environment: Environment) throws -> Template {
        guard !name.split(separator: "/").contains(".."), let text = cache.text(of: name) else {
            throw TemplateDoesNotExist(templateNames: [name], loader: self)
        }
        return Template(templateString: text, environment: environment, name: name)
    }
}
