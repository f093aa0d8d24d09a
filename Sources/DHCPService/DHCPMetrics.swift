import Metrics

/// Prometheus names: `anvil_dhcp_*`.
struct DHCPMetrics: Sendable {
    let factory: any MetricsFactory

    init(factory: any MetricsFactory) { self.factory = factory }

    func received(_ type: String) { Counter(label: "anvil_dhcp_received_total", dimensions: [("type", type)], factory: factory).increment() }
    func sent(_ type: String) { Counter(label: "anvil_dhcp_sent_total", dimensions: [("type", type)], factory: factory).increment() }
    func dropped(_ reason: String) { Counter(label: "anvil_dhcp_dropped_total", dimensions: [("reason", reason)], factory: factory).increment() }
    func exhausted(subnet: String) {
        Counter(label: "anvil_dhcp_pool_exhausted_total", dimensions: [("subnet", subnet)], factory: factory).increment()
    }
    func poolUsage(subnet: String, size: Int, held: Int) {
        Gauge(label: "anvil_dhcp_pool_addresses", dimensions: [("subnet", subnet), ("state", "total")], factory: factory).record(size)
        Gauge(label: "anvil_dhcp_pool_addresses", dimensions: [("subnet", subnet), ("state", "held")], factory: factory).record(held)
    }
    func leaseWriteFailed() { Counter(label: "anvil_dhcp_lease_write_failures_total", factory: factory).increment() }
    func bootAnswer(_ kind: String) { Counter(label: "anvil_dhcp_boot_answers_total", dimensions: [("answer", kind)], factory: factory).increment() }
    func responseTime(_ duration: Duration) {
        Timer(label: "anvil_dhcp_response_seconds", factory: factory).recordNanoseconds(Int64(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000))
    }
}
