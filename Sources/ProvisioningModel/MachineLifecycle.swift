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
}

/// A machine's CPU architecture, named as Debian names them.
public enum Architecture: String, Codable, Sendable, CaseIterable {
    case amd64
    case arm64
    case unknown
}
