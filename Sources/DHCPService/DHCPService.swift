import BootPolicy
import DHCPWire
import DatagramSockets
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import NetworkPrimitives
import ProvisioningModel
import ServiceLifecycle
import Synchronization

/// The DHCPv4 server: one socket per chosen interface on port 67 (and 4011 for PXE boot-server
/// requests in proxy mode). Subnets, reservations and leases come from the inventory; a lease is
/// on disk before its ACK is sent. Malformed or unanswerable datagrams are dropped and counted.
public struct DHCPService: Service {
    public struct Configuration: Sendable {
        /// Interfaces to serve, by name (`eth1`). Anvil never answers on an interface not listed.
        public var interfaces: [String]
        public var serverPort: Int
        public var clientPort: Int
        /// PXE boot-server port for proxy mode; `nil` turns it off.
        public var bootServerPort: Int?
        /// The boot plane's port, for the URLs handed to HTTP Boot and iPXE clients.
        public var bootPlanePort: Int
        public var policy: BootPolicy
        /// How often expired leases are reclaimed.
        public var reclaimInterval: Duration
        /// Messages handled at once; more are dropped (`overloaded`). Clients retransmit, and an
        /// answer seconds late helps nobody: under overload, shedding keeps the answers prompt.
        public var maximumInFlight: Int

        public init(
            interfaces: [String], serverPort: Int = 67, clientPort: Int = 68, bootServerPort: Int? = 4011, bootPlanePort: Int = 8080,
            policy: BootPolicy = BootPolicy(), reclaimInterval: Duration = .seconds(10), maximumInFlight: Int = 256
        ) {
            self.interfaces = interfaces
            self.serverPort = serverPort
            self.clientPort = clientPort
            self.bootServerPort = bootServerPort
            self.bootPlanePort = bootPlanePort
            self.policy = policy
            self.reclaimInterval = reclaimInterval
            self.maximumInFlight = maximumInFlight
        }
    }

    typealias DHCPChannel = NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>
    typealias Outbound = NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>

    /// One bound socket and what it serves.
    struct Listener: Sendable {
        var interface: String
        var addresses: [IPv4Address]
        var port: Int
        var channel: DHCPChannel
        var isBootServerPort: Bool
    }

    public let configuration: Configuration
    private let store: any InventoryStore
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let metrics: DHCPMetrics
    private let state = DHCPServerState()
    private let recent = RecentRequests()
    private let warnings = RateLimitedLog()
    private let inFlight = InFlightCount()
    private let machines = MachineDirectory()
    private let onListening: @Sendable (String) async -> Void
    private let decisions: BootDecisionLog

    public init(
        configuration: Configuration, store: any InventoryStore, logger: Logger, decisions: BootDecisionLog = BootDecisionLog(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        onListening: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.metrics = DHCPMetrics(factory: metricsFactory)
        self.onListening = onListening
        self.decisions = decisions
    }

    public func run() async throws {
        let startCursor = try await store.latestEventCursor()
        let subnets = try await store.all(Subnet.self)
        machines.load(try await store.all(Machine.self))
        state.configure(subnets: subnets, reservations: try await store.all(Reservation.self), leases: try await store.all(Lease.self))
        let listeners = try await openListeners()
        for listener in listeners {
            logger.info(
                "dhcp listening",
                metadata: ["interface": "\(listener.interface)", "port": "\(listener.port)", "addresses": "\(listener.addresses.map(\.description))"])
            await onListening("\(listener.interface):\(listener.port)")
        }
        let journal = LeaseJournal(store: store)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                for listener in listeners {
                    group.addTask { try await serve(listener, journal: journal) }
                }
                // The background loops stop on graceful shutdown; the listeners end when their sockets close.
                group.addTask { try? await cancelWhenGracefulShutdown { await followInventory(after: startCursor) } }
                group.addTask { try? await cancelWhenGracefulShutdown { await reclaimExpiredLeases(journal: journal) } }
            }
        } onGracefulShutdown: {
            for listener in listeners { listener.channel.channel.close(promise: nil) }
        }
    }

    /// Machines, subnets and reservations changed through the API take effect without a restart.
    private func followInventory(after startCursor: Int64) async {
        var cursor = startCursor
        while !Task.isCancelled {
            await store.eventSignal.wait(beyond: cursor, timeout: .seconds(30))
            guard !Task.isCancelled else { break }
            // Only the kinds that matter here: the log is mostly this server's own lease changes.
            let events: [InventoryEvent]
            do {
                let latest = try await store.latestEventCursor()
                events = try await store.events(after: cursor, limit: 10_000, kinds: [.machine, .subnet, .reservation])
                cursor = events.count == 10_000 ? events.last!.cursor : max(latest, events.last?.cursor ?? cursor)
            } catch {
                logger.error("dhcp cannot read the event log; retrying", metadata: ["problem": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            for event in events { machines.apply(event) }
            if events.contains(where: { $0.kind == .subnet || $0.kind == .reservation }) { await reload() }
        }
    }

    private func reclaimExpiredLeases(journal: LeaseJournal) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.reclaimInterval)
            let now = Date()
            let reclaimed = state.reclaimExpired(now: now)
            if !reclaimed.isEmpty { try? await journal.commit(reclaimed) }
            for pool in state.usage(now: now) { metrics.poolUsage(subnet: pool.subnet, size: pool.size, held: pool.held) }
        }
    }

    private func reload() async {
        do {
            state.configure(subnets: try await store.all(Subnet.self), reservations: try await store.all(Reservation.self))
            logger.info("dhcp configuration reloaded")
        } catch {
            logger.error("dhcp configuration reload failed; keeping the previous one", metadata: ["problem": "\(error)"])
        }
    }

    // MARK: Sockets

    private func openListeners() async throws -> [Listener] {
        let devices = try System.enumerateDevices()
        var listeners: [Listener] = []
        for interface in configuration.interfaces {
            let addresses = devices.filter { $0.name == interface }.compactMap { device -> IPv4Address? in
                guard let address = device.address, case .v4(let v4) = address else { return nil }
                return IPv4Address(UInt32(bigEndian: v4.address.sin_addr.s_addr))
            }
            guard !addresses.isEmpty else { throw DHCPListenError(interface: interface, problem: "has no IPv4 address (or does not exist)") }
            var ports = [(configuration.serverPort, false)]
            if let bootServerPort = configuration.bootServerPort { ports.append((bootServerPort, true)) }
            for (port, isBootServerPort) in ports {
                let channel: DHCPChannel
                do {
                    channel = try await DatagramBootstrap(group: eventLoopGroup)
                        .channelOption(.socketOption(.so_reuseaddr), value: 1)
                        .channelOption(.socketOption(.so_broadcast), value: 1)
                        .bind(host: "0.0.0.0", port: port) { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(TransientDatagramErrorFilter())
                                return try DHCPChannel(wrappingChannelSynchronously: channel)
                            }
                        }
                    try await InterfaceSocket.bind(channel.channel, to: interface)
                } catch {
                    for listener in listeners { try? await listener.channel.channel.close() }
                    throw DHCPListenError(interface: interface, problem: "port \(port): \(error)")
                }
                listeners.append(Listener(interface: interface, addresses: addresses, port: port, channel: channel, isBootServerPort: isBootServerPort))
            }
        }
        return listeners
    }

    private func serve(_ listener: Listener, journal: LeaseJournal) async throws {
        try await listener.channel.executeThenClose { inbound, outbound in
            try await withThrowingDiscardingTaskGroup { group in
                do {
                    for try await envelope in inbound {
                        guard inFlight.enter(limit: configuration.maximumInFlight) else {
                            drop("overloaded", "\(configuration.maximumInFlight) messages in flight", from: envelope.remoteAddress)
                            continue
                        }
                        group.addTask {
                            defer { inFlight.leave() }
                            await handle(envelope, on: listener, outbound: outbound, journal: journal)
                        }
                    }
                } catch where Task.isCancelled || !listener.channel.channel.isActive {
                    // Closed for shutdown.
                } catch {
                    logger.error("dhcp listener failed", metadata: ["interface": "\(listener.interface)", "problem": "\(error)"])
                    throw error
                }
            }
        }
    }

    // MARK: One message

    private func handle(_ envelope: AddressedEnvelope<ByteBuffer>, on listener: Listener, outbound: Outbound, journal: LeaseJournal) async {
        let started = ContinuousClock.now
        let message: DHCPMessage
        let facts: DHCPClientFacts
        do {
            message = try DHCPMessage(buffer: envelope.data)
            facts = try DHCPClientFacts(message: message)
        } catch let error as DHCPDecodeError {
            return drop(error.metricReason, "\(error)", from: envelope.remoteAddress)
        } catch let error as DHCPFactsError {
            return drop(error.metricReason, "\(error)", from: envelope.remoteAddress)
        } catch {
            return drop("malformed", "\(error)", from: envelope.remoteAddress)
        }
        metrics.received("\(facts.messageType)")
        let now = Date()
        guard recent.isNew(.init(mac: facts.mac, transactionID: message.transactionID, type: facts.messageType.rawValue), now: now) else {
            return drop("duplicate", "duplicate of a message being answered", from: envelope.remoteAddress)
        }
        let selection: DHCPServerState.Selection
        let serverAddress: IPv4Address
        do {
            let selected = try state.select(relayAgent: facts.relayAgent, interfaceAddresses: listener.addresses)
            selection = selected.0
            serverAddress = selected.serverAddress ?? listener.addresses[0]
        } catch {
            return drop(error.metricReason, "\(error)", from: envelope.remoteAddress)
        }
        let machine = machines.machine(facts.mac)
        let link = DHCPLink(serverAddress: serverAddress, bootBaseURL: "http://\(serverAddress):\(configuration.bootPlanePort)")
        let responder = DHCPResponder(policy: configuration.policy)
        let outcome: DHCPOutcome
        switch selection {
        case .full(let subnet):
            guard listener.isBootServerPort == false else { return drop("full_mode_on_boot_server_port", "not proxy", from: envelope.remoteAddress) }
            guard let result = state.withPool(subnet, { pool in
                responder.respond(to: message, facts: facts, pool: &pool, machine: machine, link: link, now: now)
            }) else { return drop("no_subnet", "subnet \(subnet) removed", from: envelope.remoteAddress) }
            outcome = result
            if outcome.exhausted {
                metrics.exhausted(subnet: subnet)
                warnings.warn(logger, "pool_exhausted:\(subnet)", "dhcp pool exhausted", ["subnet": "\(subnet)", "mac": "\(facts.mac)"])
            }
        case .proxy:
            outcome = responder.respondAsProxy(to: message, facts: facts, machine: machine, link: link, bootServerPort: listener.isBootServerPort)
        }
        var metadata: Logger.Metadata = [
            "mac": "\(facts.mac)", "type": "\(facts.messageType)", "interface": "\(listener.interface)", "outcome": "\(outcome.note)",
        ]
        if let decision = outcome.decision {
            metadata["boot"] = "\(decision.answer)"
            metadata["why"] = "\(decision.reason)"
        }
        logger.debug("dhcp", metadata: metadata)
        if let decision = outcome.decision, facts.wantsNetworkBoot || machine != .unknown {
            let address = outcome.reply.map(\.message.yourAddress).flatMap { $0.value == 0 ? nil : $0.description }
            decisions.record(
                BootDecisionRecord(
                    time: now, mac: facts.mac, message: "\(facts.messageType)",
                    via: facts.relayAgent.map { "relay \($0)" } ?? listener.interface, architecture: facts.architecture?.description,
                    vendorClass: facts.vendorClass, userClasses: facts.userClasses, answer: decision.answer.summary, reason: decision.reason,
                    address: outcome.reply == nil ? nil : address))
        }
        if !outcome.leaseChanges.isEmpty {
            do {
                try await journal.commit(outcome.leaseChanges)
            } catch {
                metrics.leaseWriteFailed()
                logger.error("dhcp lease write failed; reply withheld", metadata: ["mac": "\(facts.mac)", "problem": "\(error)"])
                return
            }
        }
        guard let reply = outcome.reply else { return }
        let destination: SocketAddress
        do {
            destination = try address(for: reply.destination, sender: envelope.remoteAddress)
        } catch {
            return drop("bad_destination", "\(error)", from: envelope.remoteAddress)
        }
        do {
            try await outbound.write(AddressedEnvelope(remoteAddress: destination, data: reply.message.encoded))
            let type = (try? reply.message.messageType()).map { "\($0!)" } ?? "reply"
            metrics.sent(type)
            if let decision = outcome.decision, reply.message.bootFile != "" || reply.message.options[.bootfileName] != nil {
                metrics.bootAnswer(decision.answer.metricLabel)
            }
            metrics.responseTime(ContinuousClock.now - started)
        } catch {
            warnings.warn(logger, "send", "dhcp reply not sent", ["destination": "\(destination)", "problem": "\(error)"])
        }
    }

    private func address(for destination: DHCPReplyDestination, sender: SocketAddress) throws -> SocketAddress {
        switch destination {
        case .relay(let relay): try SocketAddress(ipAddress: relay.description, port: configuration.serverPort)
        case .unicast(let client): try SocketAddress(ipAddress: client.description, port: configuration.clientPort)
        case .broadcast: try SocketAddress(ipAddress: "255.255.255.255", port: configuration.clientPort)
        case .sender: sender
        }
    }

    private func drop(_ reason: String, _ detail: String, from sender: SocketAddress) {
        metrics.dropped(reason)
        warnings.warn(logger, reason, "dhcp message dropped", ["reason": "\(reason)", "detail": "\(detail)", "from": "\(sender)"])
    }
}

extension DHCPService: CustomStringConvertible {
    public var description: String { "DHCPService(interfaces: \(configuration.interfaces.joined(separator: ", ")))" }
}

extension BootDecision.Answer {
    var summary: String {
        switch self {
        case .none: "none"
        case .tftp(let file): "tftp \(file)"
        case .http(let url): "http \(url)"
        case .ipxeScript(let url): "ipxe-script \(url)"
        }
    }

    var metricLabel: String {
        switch self {
        case .none: "none"
        case .tftp: "tftp"
        case .http: "http"
        case .ipxeScript: "ipxe_script"
        }
    }
}

/// An interface could not be served; says which and why.
public struct DHCPListenError: Error, CustomStringConvertible {
    public var interface: String
    public var problem: String

    public var description: String { "dhcp: interface \(interface) \(problem)" }
}

/// Messages being handled right now, against the configured limit.
final class InFlightCount: Sendable {
    private let count = Atomic<Int>(0)

    func enter(limit: Int) -> Bool {
        if count.add(1, ordering: .relaxed).newValue <= limit { return true }
        count.subtract(1, ordering: .relaxed)
        return false
    }

    func leave() { count.subtract(1, ordering: .relaxed) }
}

/// Warnings a flood could repeat thousands of times a second: the first of each kind is logged,
/// then at most one per interval, with the number suppressed meanwhile.
final class RateLimitedLog: Sendable {
    private let interval: TimeInterval
    private let last = Mutex<[String: (time: Date, suppressed: Int)]>([:])

    init(interval: TimeInterval = 10) { self.interval = interval }

    func warn(_ logger: Logger, _ kind: String, _ message: Logger.Message, _ metadata: Logger.Metadata) {
        let now = Date()
        let suppressed: Int? = last.withLock { last in
            if let entry = last[kind], now.timeIntervalSince(entry.time) < interval {
                last[kind]?.suppressed += 1
                return nil
            }
            let suppressed = last[kind]?.suppressed ?? 0
            last[kind] = (now, 0)
            return suppressed
        }
        guard let suppressed else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning(message, metadata: metadata)
    }
}
