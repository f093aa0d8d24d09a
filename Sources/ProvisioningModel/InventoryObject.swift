import Foundation

/// The kinds of object the inventory keeps. The raw value is the singular name used in events and tables;
/// `collection` is the plural used in URLs and CLI commands.
public enum ObjectKind: String, Codable, Sendable, CaseIterable {
    case machine, subnet, reservation, bootenv, param, profile, task, stage, workflow, job, lease

    public var collection: String {
        switch self {
        case .machine: "machines"
        case .subnet: "subnets"
        case .reservation: "reservations"
        case .bootenv: "bootenvs"
        case .param: "params"
        case .profile: "profiles"
        case .task: "tasks"
        case .stage: "stages"
        case .workflow: "workflows"
        case .job: "jobs"
        case .lease: "leases"
        }
    }

    public init?(collection: String) {
        guard let kind = Self.allCases.first(where: { $0.collection == collection }) else { return nil }
        self = kind
    }

    /// The JSON field that holds the key.
    public var keyField: String {
        switch self {
        case .machine, .job: "id"
        case .reservation: "mac"
        case .lease: "address"
        default: "name"
        }
    }

    /// Jobs and leases are written by the appliance itself (workflow engine, DHCP), never through the CRUD API.
    public var isUserWritable: Bool { self != .job && self != .lease }
}

/// A field a list can be filtered on, and where its value sits in the stored object.
public enum FilterField: Sendable, Hashable {
    /// A scalar at a JSON path, compared for equality.
    case equals(path: String)
    /// A string array at a JSON path that must contain the value.
    case contains(path: String)
    /// Any of the machine's interfaces has this MAC (normalised before comparison).
    case machineMAC
    /// A number at a JSON path, compared with `=`, `<`, `>=`…; `bytes` values may carry units (`64GiB`).
    case number(path: String, bytes: Bool)
    /// The length of an array at a JSON path (`disk.count>=2`).
    case count(path: String)
}

/// Who wrote an object: an API user, or the content shipped in `bootenvs/` and `templates/content/`.
public enum ObjectOrigin: String, Codable, Sendable {
    case user
    case content
}

/// An object of one kind that points at an object of another, by key (`machine.bootEnv` → a bootenv).
/// The store refuses a write whose references dangle and a delete of an object still referenced.
public struct ObjectReference: Hashable, Sendable {
    public var field: String
    public var kind: ObjectKind
    public var key: String

    public init(field: String, kind: ObjectKind, key: String) {
        self.field = field
        self.kind = kind
        self.key = key
    }
}

/// What every inventory object provides so the store, the API and the CLI can treat all kinds alike.
public protocol InventoryObject: Codable, Sendable, Equatable {
    static var kind: ObjectKind { get }
    /// Every top-level JSON field the kind has; anything else in a request is reported as unknown.
    static var fieldNames: Set<String> { get }
    /// Fields a list can be filtered on (`?state=ready`).
    static var filterFields: [String: FilterField] { get }
    /// The identity in URLs and in the store: a name, or a UUID for machines and jobs.
    var key: String { get }
    /// Every problem with the object on its own (cross-object checks are `references` and `paramValues`).
    func validate() -> [ValidationProblem]
    var references: [ObjectReference] { get }
    /// Param values the object sets, checked against the param definitions that exist.
    var paramValues: [String: JSONValue] { get }
    /// Problems with changing `old` into this object (illegal lifecycle moves, changed identity).
    func validateChange(from old: Self) -> [ValidationProblem]
}

extension InventoryObject {
    public static var filterFields: [String: FilterField] { [:] }
    public var references: [ObjectReference] { [] }
    public var paramValues: [String: JSONValue] { [:] }
    public func validateChange(from old: Self) -> [ValidationProblem] { [] }
}

extension InventoryObject where Self: NamedObject {
    public var key: String { name }
}

/// Objects whose key is their name.
public protocol NamedObject {
    var name: String { get }
}

/// An object as stored: the value plus bookkeeping the store owns.
public struct Stored<Object: InventoryObject>: Sendable {
    public var object: Object
    public var meta: ObjectMeta

    public init(object: Object, meta: ObjectMeta) {
        self.object = object
        self.meta = meta
    }
}

/// Bookkeeping for a stored object. `revision` starts at 1 and grows by one per write; it is the ETag.
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var revision: Int
    public var origin: ObjectOrigin
    /// For content: the file the object came from.
    public var source: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(revision: Int, origin: ObjectOrigin, source: String? = nil, createdAt: Date, updatedAt: Date) {
        self.revision = revision
        self.origin = origin
        self.source = source
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One page of a list, with the cursor to ask for the next (absent on the last page).
public struct Page<Object: InventoryObject>: Sendable {
    public var items: [Stored<Object>]
    public var nextCursor: String?

    public init(items: [Stored<Object>], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// Helper for the hand-written decoders: every field but the identity is optional in a request.
extension KeyedDecodingContainer {
    func decode<T: Decodable>(_ key: Key, default defaultValue: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? defaultValue()
    }
}
