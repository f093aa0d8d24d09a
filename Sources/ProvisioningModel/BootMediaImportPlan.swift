/// What `anvil bootenvs import` placed for one boot environment, kept beside the boot files
/// (`<boot-files>/.imports/<bootenv>.json`): per source, the URL and digest its files came from and
/// each file's size and digest. A later import skips a source this record still matches.
public struct BootMediaManifest: Codable, Sendable, Hashable {
    public var bootEnv: String
    public var sources: [Source]

    public struct Source: Codable, Sendable, Hashable {
        public var url: String
        public var sha256: String
        public var files: [File]

        public init(url: String, sha256: String, files: [File]) {
            self.url = url
            self.sha256 = sha256
            self.files = files
        }
    }

    public struct File: Codable, Sendable, Hashable {
        /// Boot-file path, relative to the boot-files directory.
        public var path: String
        public var size: Int64
        public var sha256: String
        /// The archive member it was extracted from; nil when the download itself is the file.
        public var member: String?

        public init(path: String, size: Int64, sha256: String, member: String? = nil) {
            self.path = path
            self.size = size
            self.sha256 = sha256
            self.member = member
        }
    }

    public init(bootEnv: String, sources: [Source] = []) {
        self.bootEnv = bootEnv
        self.sources = sources
    }

    /// Replaces the record of the source with this digest and target set, or adds it; records of
    /// sources the boot environment no longer lists are dropped.
    public mutating func record(_ source: Source, keeping current: [BootEnvSource]) {
        let paths = Set(source.files.map(\.path))
        sources.removeAll { $0.sha256 == source.sha256 || !Set($0.files.map(\.path)).isDisjoint(with: paths) }
        sources.append(source)
        let wanted = Set(current.map { $0.sha256.lowercased() })
        sources.removeAll { !wanted.contains($0.sha256.lowercased()) }
    }
}

/// Which sources of a boot environment need fetching. Pure: the caller says which target files
/// exist (and their sizes) and hands over the manifest it read.
public struct BootMediaImportPlan: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// Every target exists and the manifest says it came from this source's digest.
        case skip
        /// Download (unless a verified copy is cached), verify, then place or extract; `reason` says why.
        case fetch(reason: String)
    }

    public struct Step: Sendable, Hashable {
        public var index: Int
        public var source: BootEnvSource
        public var action: Action
    }

    public var steps: [Step]

    /// `existing`: boot-file path → size, for each target path that exists as a regular file.
    public init(bootEnv: BootEnv, manifest: BootMediaManifest?, existing: [String: Int64], force: Bool) {
        steps = bootEnv.sources.enumerated().map { index, source in
            Step(
                index: index, source: source,
                action: Self.action(for: source, manifest: manifest, existing: existing, force: force))
        }
    }

    public var fetches: [Step] { steps.filter { $0.action != .skip } }

    static func action(for source: BootEnvSource, manifest: BootMediaManifest?, existing: [String: Int64], force: Bool) -> Action
    {
        if force { return .fetch(reason: "--force") }
        let targets = Set(source.targets.map(Self.normalized))
        guard let recorded = manifest?.sources.first(where: { $0.sha256.lowercased() == source.sha256.lowercased() }) else {
            let earlier = manifest?.sources.first { !Set($0.files.map(\.path)).isDisjoint(with: targets) }
            return .fetch(reason: earlier == nil ? "not imported yet" : "the source's sha256 changed")
        }
        guard Set(recorded.files.map(\.path)) == targets else { return .fetch(reason: "the source's targets changed") }
        for file in recorded.files.sorted(by: { $0.path < $1.path }) {
            guard let size = existing[file.path] else { return .fetch(reason: "\(file.path) is missing") }
            guard size == file.size else {
                return .fetch(reason: "\(file.path) changed size (\(size) bytes, imported \(file.size))")
            }
        }
        return .skip
    }

    /// Target paths as the manifest records them (`a//./b` is `a/b`); validation has checked them.
    public static func normalized(_ path: String) -> String {
        (try? BootFilePath(validating: path).description) ?? path
    }
}
