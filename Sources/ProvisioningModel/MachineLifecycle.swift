/// Where a machine is in its life. The legal moves are listed once, in `allowedNextStates`,
/// instead of being implied by a combination of fields.
public enum MachineState: String, Codable, Sendable, CaseIterable {
    /// Seen (call-home or created by hand), facts known, not yet through the default workflow.
    case discovered
    /// Idle and available for deployment.
    case ready
    /// A deployment workflow is running.
    case deploying
    /// Running its workload.
    case deployed
    /// A reimage is queued and waiting for a slot.
    case reimageQueued
    /// Disks are being wiped as the first step of a reimage.
    case wiping
    /// A workflow failed; an operator decides what next.
    case failed
    /// Taken out of automation by an operator.
    case maintenance
    /// Decommissioned; kept for history.
    case retired

    public var allowedNextStates: Set<MachineState> {
        switch self {
        case .discovered: [.ready, .deploying, .failed, .maintenance, .retired]
        case .ready: [.deploying, .reimageQueued, .maintenance, .retired, .discovered]
        case .deploying: [.deployed, .failed, .maintenance]
        case .deployed: [.reimageQueued, .maintenance, .retired, .failed]
        case .reimageQueued: [.wiping, .deploying, .deployed, .maintenance, .failed]
        case .wiping: [.deploying, .failed, .maintenance]
        case .failed: [.discovered, .ready, .reimageQueued, .deploying, .maintenance, .retired]
        case .maintenance: [.discovered, .ready, .deployed, .reimageQueued, .failed, .retired]
        case .retired: [.maintenance]
        }
    }

    public func canMove(to next: MachineState) -> Bool { next == self || allowedNextStates.contains(next) }

    /// The states a machine passes through to get from here to `target` by legal moves, shortest
    /// first (`target` last; empty when it is here already or cannot get there).
    public func path(to target: MachineState) -> [MachineState] {
        guard target != self else { return [] }
        var previous: [MachineState: MachineState] = [:]
        var queue = [self]
        while !queue.isEmpty {
            let state = queue.removeFirst()
            // allCases order makes the search, and so the path, the same every time.
            for next in MachineState.allCases
            where state.allowedNextStates.contains(next) && previous[next] == nil && next != self {
                previous[next] = state
                if next == target {
                    var path = [target]
                    while let before = previous[path[0]], before != self { path.insert(before, at: 0) }
                    return path
                }
                queue.append(next)
            }
        }
        return []
    }
}

/// A machine's CPU architecture, named as Debian names them.
public enum Architecture: String, Codable, Sendable, CaseIterable {
    case amd64
    case arm64
    case unknown
}
