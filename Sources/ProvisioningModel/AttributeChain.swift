/// Where a resolved param value came from.
public enum ParamSource: Hashable, Sendable {
    case machine
    case profile(String)
    case stageProfile(String)
    case global
    case paramDefault
    /// No layer sets the param and it has no default.
    case unset
}

public struct ResolvedParam: Hashable, Sendable {
    public var name: String
    public var value: JSONValue?
    public var source: ParamSource

    public init(name: String, value: JSONValue?, source: ParamSource) {
        self.name = name
        self.value = value
        self.source = source
    }
}

/// The attribute chain: a param's value comes from the machine, then its profiles in order, then the
/// profile of the stage it is in, then the `global` profile, then the param's default. The first layer
/// that sets the param wins; the answer says which layer it was.
public struct AttributeChain: Sendable {
    public var machine: Machine
    /// The machine's profiles in the machine's order; a missing profile is skipped.
    public var profiles: [Profile]
    public var stageProfile: Profile?
    public var global: Profile?

    public init(machine: Machine, profiles: [Profile], stageProfile: Profile? = nil, global: Profile? = nil) {
        self.machine = machine
        self.profiles = profiles
        self.stageProfile = stageProfile
        self.global = global
    }

    public func resolve(_ name: String, definition: Param?) -> ResolvedParam {
        if let value = machine.params[name] { return ResolvedParam(name: name, value: value, source: .machine) }
        let byName = Dictionary(profiles.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for profileName in machine.profiles {
            if let value = byName[profileName]?.params[name] {
                return ResolvedParam(name: name, value: value, source: .profile(profileName))
            }
        }
        if let stageProfile, let value = stageProfile.params[name] {
            return ResolvedParam(name: name, value: value, source: .stageProfile(stageProfile.name))
        }
        if let global, let value = global.params[name] { return ResolvedParam(name: name, value: value, source: .global) }
        if let value = definition?.default { return ResolvedParam(name: name, value: value, source: .paramDefault) }
        return ResolvedParam(name: name, value: nil, source: .unset)
    }
}
