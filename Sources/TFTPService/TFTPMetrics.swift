import Metrics

/// The TFTP service's counters (Prometheus names once the appliance bootstraps the registry).
struct TFTPMetrics: Sendable {
    let factory: any MetricsFactory
    let started: Counter
    let completed: Counter
    let bytesSent: Counter
    let retransmissions: Counter
    let strangerPackets: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        started = Counter(label: "anvil_tftp_transfers_started_total", factory: factory)
        completed = Counter(label: "anvil_tftp_transfers_completed_total", factory: factory)
        bytesSent = Counter(label: "anvil_tftp_bytes_sent_total", factory: factory)
        retransmissions = Counter(label: "anvil_tftp_retransmissions_total", factory: factory)
        strangerPackets = Counter(label: "anvil_tftp_unknown_tid_packets_total", factory: factory)
    }

    /// `reason`: timeout, client_error, read, socket, closed, shutdown.
    func failed(reason: String) {
        Counter(label: "anvil_tftp_transfers_failed_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// Requests answered with an ERROR before any transfer: `reason` is not_found, access_violation,
    /// unreadable, write_request, unsupported_mode, malformed, busy, unexpected_packet.
    func refused(reason: String) {
        Counter(label: "anvil_tftp_requests_refused_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    func record(_ outcome: TFTPTransferOutcome) {
        bytesSent.increment(by: outcome.bytesSent)
        retransmissions.increment(by: outcome.retransmissions)
        strangerPackets.increment(by: outcome.strangerPackets)
        switch outcome.result {
        case .completed: completed.increment()
        case .failed(let reason, _): failed(reason: reason)
        }
    }
}
