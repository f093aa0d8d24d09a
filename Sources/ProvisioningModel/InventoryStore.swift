import Foundation

/// Why an inventory operation was refused. Adapters map these to their protocol (HTTP status, CLI exit code).
public enum InventoryError: Error, Sendable, Equatable {
    /// `what` names the kind of thing: `machine`, `bootenv`, `token`…
    case notFound(what: String, key: String)
    /// The object, or something unique in it (a name, a MAC), already exists.
    case alreadyExists(field: String, message: String)
    /// The write was based on an older revision than the stored one (optimistic concurrency).
    case revisionMismatch(key: String, expected: Int, actual: Int)
    /// Shipped content cannot be changed or shadowed through the API.
    case readOnlyContent(what: String, key: String, source: String)
    /// The object is still referenced by others and cannot be deleted.
    case inUse(what: String, key: String, referrers: [String])
    /// The object breaks a rule: every problem, each with its field.
    case invalid([ValidationProblem])
    /// The store itself failed (disk full, corrupt file…); the cause is kept for the log.
    case storage(String)

    /// One line for logs, CLI output and content reports.
    public var message: String {
        switch self {
        case .notFound(let what, let key): "no \(what) '\(key)'"
        case .alreadyExists(_, let message): message
        case .revisionMismatch(let key, let expected, let actual):
            "'\(key)' has changed: the request was based on revision \(expected), the stored revision is \(actual)"
        case .readOnlyContent(let what, let key, let source):
            "\(what) '\(key)' is shipped content (\(source)) and read-only; copy it under another name to change it"
        case .inUse(let what, let key, let referrers):
            "\(what) '\(key)' is still used by \(referrers.joined(separator: ", "))"
        case .invalid(let problems): problems.map(\.description).joined(separator: "; ")
        case .storage(let message): message
        }
    }
}

/// A change to the inventory, as kept in the durable event log. `cursor` grows monotonically.
public struct InventoryEvent: Codable, Sendable, Hashable {
    /// `created`, `updated` and `deleted` come with every write; the others are notes a service
    /// adds about an object (always a machine so far) in the same transaction as the write they explain.
    public enum Action: String, Codable, Sendable, CaseIterable {
        case created, updated, deleted
        /// A machine called home for the first time.
        case discovered
        /// A machine's hardware differs from its last report; the object is the list of changes.
        case factsChanged
        /// A caller's identity points at several machines or contradicts one; nothing was merged.
        case identityConflict
        /// The boot plane served the machine a rendered file; the detail says which (path, boot
        /// environment, template).
        case fileServed
        /// A file the machine asked for could not be rendered; the detail names the template and why.
        case renderFailed
        /// A power command ran against the machine's BMC; the object is its `PowerOperationRecord`.
        case powerAction
        /// The power-state sync found the machine in another state than its last command left it.
        case powerDrift
        /// Something only a person can do (power a machine without a BMC by hand).
        case operatorAction
        /// A BMC was attached from a credential set matching the BMC address the agent reported.
        case bmcAttached
        /// An installer (or the image-deploy task) said the install finished; the detail names the boot
        /// environment that finished and the one the machine boots next, and the state it moved to.
        case installed
        /// The agent reported a task's exit code; the detail has the task URL, the code and, when the
        /// failure failed the machine, its new state.
        case taskFinished
        /// The workflow engine moved the machine on: a workflow started, a stage began, the boot
        /// environment changed, a job was handed out or ended, the workflow finished or failed. The
        /// detail's `step` says which, `message` says it in words.
        case workflowStep

        /// Whether the object itself changed (the event then carries it), rather than a note about it.
        public var changesObject: Bool { [.created, .updated, .deleted].contains(self) }
    }

    public var cursor: Int64
    public var time: Date
    public var action: Action
    public var kind: ObjectKind
    public var key: String
    /// Who made the change: a token name, `content`, or a service.
    public var actor: String
    /// The object after the change (absent for deletions).
    public var object: JSONValue?

    public init(cursor: Int64, time: Date, action: Action, kind: ObjectKind, key: String, actor: String, object: JSONValue?) {
        self.cursor = cursor
        self.time = time
        self.action = action
        self.kind = kind
        self.key = key
        self.actor = actor
        self.object = object
    }
}

/// A note for the event log about an object, written atomically with a change (see `Action`).
public struct InventoryNote: Sendable, Hashable {
    public var action: InventoryEvent.Action
    public var kind: ObjectKind
    public var key: String
    public var detail: JSONValue?

    public init(action: InventoryEvent.Action, kind: ObjectKind, key: String, detail: JSONValue? = nil) {
        self.action = action
        self.kind = kind
        self.key = key
        self.detail = detail
    }
}

/// A list filter: `field` is one of the kind's `filterFields`, compared with `value`.
public struct ListFilter: Hashable, Sendable {
    public enum Comparison: String, Sendable, CaseIterable {
        // Two-character operators first, so `>=` is never read as `>`.
        case atLeast = ">=", atMost = "<=", notEqual = "!=", equal = "=", greater = ">", less = "<"

        public var sql: String { self == .equal ? "=" : rawValue }
    }

    public var field: String
    public var comparison: Comparison
    public var value: String

    public init(field: String, _ comparison: Comparison = .equal, value: String) {
        self.field = field
        self.comparison = comparison
        self.value = value
    }

    /// `state=ready`, `memory>=64GiB`, `disk.count>=2`.
    public init?(expression: String) {
        // The first operator splits: the value may contain `=` (a URL, a kernel argument).
        for index in expression.indices where index != expression.startIndex {
            let rest = expression[index...]
            guard let comparison = Comparison.allCases.first(where: { rest.hasPrefix($0.rawValue) }) else { continue }
            self.init(
                field: String(expression[..<index]), comparison,
                value: String(rest.dropFirst(comparison.rawValue.count)))
            return
        }
        return nil
    }
}

/// What loading shipped content did.
public struct ContentReport: Sendable {
    public var created: [String] = []
    public var updated: [String] = []
    public var removed: [String] = []
    public var unchanged = 0
    /// Objects refused, with the reason (a user object has the name, a reference dangles…).
    public var skipped: [(object: String, reason: String)] = []

    public init() {}
}

/// The inventory port. Implementations: `SQLiteInventory` (embedded), later PostgreSQL.
/// Every write is atomic together with its event-log row.
public protocol InventoryStore: Sendable {
    func create<O: InventoryObject>(_ object: O, actor: String, notes: [InventoryNote]) async throws -> Stored<O>
    func fetch<O: InventoryObject>(_ type: O.Type, key: String) async throws -> Stored<O>
    /// Replaces the object; with `expectedRevision`, only if the stored revision is that one.
    func replace<O: InventoryObject>(
        _ object: O, expectedRevision: Int?, actor: String, notes: [InventoryNote]
    ) async throws -> Stored<O>
    /// Reads the object and writes what `change` makes of it, in one transaction, so nothing written
    /// meanwhile is lost or doubled (a retried callback finds the first one's result). `change` returns
    /// the versions the object passes through, each checked against the one before it (a state machine
    /// walked one legal move at a time, an `updated` event each) and the notes explaining them; with no
    /// versions the object stays as it is and only the notes are recorded.
    func update<O: InventoryObject>(
        _ type: O.Type, key: String, actor: String,
        _ change: @escaping @Sendable (O) throws -> (steps: [O], notes: [InventoryNote])
    ) async throws -> Stored<O>
    /// Notes on their own, for what changed nothing (an identity conflict).
    func record(_ notes: [InventoryNote], actor: String) async throws
    func delete<O: InventoryObject>(_ type: O.Type, key: String, expectedRevision: Int?, actor: String) async throws
    /// Creates or replaces every object in one transaction (one disk sync for the batch): the DHCP
    /// server's group commit of leases. All or nothing.
    func upsert<O: InventoryObject>(_ objects: [O], actor: String) async throws
    /// Objects in key order after `cursor`, at most `limit`.
    func list<O: InventoryObject>(
        _ type: O.Type, filters: [ListFilter], after cursor: String?, limit: Int
    ) async throws -> Page<O>
    func machine(named name: String) async throws -> Stored<Machine>?
    func count(_ kind: ObjectKind) async throws -> Int

    /// Replaces shipped content with `objects` (same origin), leaving user objects alone.
    func loadContent(_ objects: [ContentObject]) async throws -> ContentReport

    /// Events after `cursor` in order, at most `limit`; only of `kinds` when given.
    func events(after cursor: Int64, limit: Int, kinds: Set<ObjectKind>?) async throws -> [InventoryEvent]
    /// One object's events, oldest first, after `cursor`; only `actions` when given.
    func events(
        of kind: ObjectKind, key: String, actions: Set<InventoryEvent.Action>?, after cursor: Int64, limit: Int
    ) async throws -> [InventoryEvent]
    /// The newest cursor in the event log (0 when empty).
    func latestEventCursor() async throws -> Int64
    /// Wakes listeners after each committed change.
    var eventSignal: EventSignal { get }
    /// Grows after every committed write that may have changed an object (notes alone do not count).
    /// Caches of what is read from the store compare it to know they are current; it is this process's
    /// count, which is enough because only the server process writes the inventory.
    var objectChangeCount: Int64 { get }

    // BMCs and power: credentials (password sealed by the caller), the operation log, sensor readings.
    func saveBMCCredential(_ credential: StoredBMCCredential) async throws
    func bmcCredential(machine: ObjectID) async throws -> StoredBMCCredential?
    func bmcCredentials() async throws -> [StoredBMCCredential]
    func deleteBMCCredential(machine: ObjectID) async throws
    func saveBMCCredentialSet(_ set: StoredBMCCredentialSet) async throws
    func bmcCredentialSets() async throws -> [StoredBMCCredentialSet]
    func deleteBMCCredentialSet(name: String) async throws
    /// Attaches `credential` only if the machine has no BMC yet (a hand-entered one always wins); true when it did.
    func attachBMCCredentialIfAbsent(
        _ credential: StoredBMCCredential, notes: [InventoryNote], actor: String
    ) async throws -> Bool
    /// Records the operation with its notes in one transaction; a successful on/off/cycle sets the
    /// machine's expected power state, and any reported state becomes the observed one.
    func recordPowerOperation(_ operation: PowerOperationRecord, expectedPower: PowerState?, notes: [InventoryNote]) async throws
    func powerOperations(machine: ObjectID, limit: Int) async throws -> [PowerOperationRecord]
    /// A state the sync saw, kept on the BMC record (not in the operation log, which it would flood), with its notes.
    func recordPowerObservation(
        machine: ObjectID, state: PowerState, at time: Date, notes: [InventoryNote], actor: String) async throws
    func saveSensorSnapshot(_ snapshot: SensorSnapshot) async throws
    func sensorSnapshot(machine: ObjectID) async throws -> SensorSnapshot?

    /// The workflow engine's write, in one transaction: the machine's versions (each a legal move from
    /// the one before), only if it is still at `revision`; the jobs created or changed; the notes.
    func writeWorkflowStep(
        machine steps: [Machine], basedOn revision: Int, key: String, jobs: [Job], notes: [InventoryNote], actor: String
    ) async throws
    /// Appends `chunk` to a job's log where the agent says it starts: bytes the log already has are
    /// skipped (a resent chunk), a chunk past the end is refused (`JobLogGap`). Returns the new length.
    func appendJobLog(job: ObjectID, offset: Int64, _ chunk: Data) async throws -> Int64
    /// Up to `limit` bytes of a job's log from `offset`, and the log's whole length.
    func jobLog(job: ObjectID, from offset: Int64, limit: Int) async throws -> (bytes: Data, length: Int64)

    func createToken(_ token: APIToken, secretHash: String) async throws
    func token(secretHash: String) async throws -> APIToken?
    func tokens() async throws -> [APIToken]
    func deleteToken(id: ObjectID) async throws
}

extension InventoryStore {
    public func create<O: InventoryObject>(_ object: O, actor: String) async throws -> Stored<O> {
        try await create(object, actor: actor, notes: [])
    }

    public func replace<O: InventoryObject>(_ object: O, expectedRevision: Int?, actor: String) async throws -> Stored<O> {
        try await replace(object, expectedRevision: expectedRevision, actor: actor, notes: [])
    }

    public func events(after cursor: Int64, limit: Int) async throws -> [InventoryEvent] {
        try await events(after: cursor, limit: limit, kinds: nil)
    }

    /// Every object of a kind, fetched page by page.
    public func all<O: InventoryObject>(_ type: O.Type) async throws -> [O] {
        var objects: [O] = []
        var cursor: String?
        repeat {
            let page = try await list(type, filters: [], after: cursor, limit: 1000)
            objects += page.items.map(\.object)
            cursor = page.nextCursor
        } while cursor != nil
        return objects
    }
}

/// A log chunk that would leave a hole: the log is `length` bytes long, the chunk starts later.
public struct JobLogGap: Error, Sendable, Equatable {
    public var length: Int64
    public var offset: Int64

    public init(length: Int64, offset: Int64) {
        self.length = length
        self.offset = offset
    }
}

/// A shipped object and the file it came from.
public struct ContentObject: Sendable {
    public var object: any InventoryObject
    public var source: String

    public init(object: any InventoryObject, source: String) {
        self.object = object
        self.source = source
    }

    public var label: String { "\(type(of: object).kind.rawValue) '\(object.key)' (\(source))" }
}
