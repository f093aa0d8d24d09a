import DHCPWire
import Foundation
import NetworkPrimitives
import ProvisioningModel

/// Where a reply goes (RFC 2131 §4.1).
public enum DHCPReplyDestination: Sendable, Equatable {
    /// To the relay agent's server port (67).
    case relay(IPv4Address)
    /// To a client that has an address, at its port 68.
    case unicast(IPv4Address)
    /// To 255.255.255.255:68 on the receiving link: the client has no address yet (or is NAKed).
    case broadcast
    /// Back to the sender's address and port (PXE boot-server requests on port 4011).
    case sender
}

public struct DHCPReply: Sendable, Equatable {
    public var message: DHCPMessage
    public var destination: DHCPReplyDestination
}

/// The result of one client message: the reply (if any), leases to persist before sending it, the
/// boot decision taken, and a one-line account for the log when nothing is sent.
public struct DHCPOutcome: Sendable {
    public var reply: DHCPReply?
    public var leaseChanges: [Lease] = []
    public var decision: BootDecision?
    public var note: String
    /// Set when a DISCOVER found no free address.
    public var exhausted = false

    static func silent(_ note: String) -> DHCPOutcome { DHCPOutcome(reply: nil, note: note) }
}

/// What the server knows about the link a message arrived on.
public struct DHCPLink: Sendable {
    /// Anvil's address on that link: the server identifier, TFTP next-server and boot-plane host.
    public var serverAddress: IPv4Address
    /// The boot plane's base URL as clients on that link reach it.
    public var bootBaseURL: String

    public init(serverAddress: IPv4Address, bootBaseURL: String) {
        self.serverAddress = serverAddress
        self.bootBaseURL = bootBaseURL
    }
}

/// Client message in, reply out: the protocol rules of RFC 2131 §4.3 and the netboot answer, in one
/// pure function per mode. The service picks the subnet and looks the machine up beforehand.
public struct DHCPResponder: Sendable {
    public var policy: BootPolicy

    public init(policy: BootPolicy) { self.policy = policy }

    // MARK: Full mode

    public func respond(
        to request: DHCPMessage, facts: DHCPClientFacts, pool: inout LeasePool, machine: KnownMachine, link: DHCPLink, now: Date
    ) -> DHCPOutcome {
        let decision = policy.decide(facts, machine: machine, bootBaseURL: link.bootBaseURL)
        switch facts.messageType {
        case .discover:
            guard let address = pool.offer(to: facts.mac, requested: facts.requestedAddress, now: now) else {
                var outcome = DHCPOutcome.silent("no free address in subnet \(pool.subnet.name)")
                outcome.exhausted = true
                return outcome
            }
            let offer = reply(.offer, to: request, facts: facts, address: address, subnet: pool.subnet, pool: pool, decision: decision, link: link)
            return DHCPOutcome(reply: offer, decision: decision, note: "offered \(address)")

        case .request:
            return respondToRequest(request, facts: facts, pool: &pool, decision: decision, link: link, now: now)

        case .decline:
            guard facts.serverIdentifier == link.serverAddress, let address = facts.requestedAddress else {
                return .silent("decline not addressed to us")
            }
            guard let lease = pool.decline(address, by: facts.mac, now: now) else { return .silent("decline of \(address) that \(facts.mac) does not hold") }
            return DHCPOutcome(reply: nil, leaseChanges: [lease], note: "\(address) declined by \(facts.mac), on probation")

        case .release:
            guard let lease = pool.release(facts.clientAddress, by: facts.mac, now: now) else {
                return .silent("release of \(facts.clientAddress) that \(facts.mac) does not hold")
            }
            return DHCPOutcome(reply: nil, leaseChanges: [lease], note: "\(facts.clientAddress) released by \(facts.mac)")

        case .inform:
            var ack = reply(.ack, to: request, facts: facts, address: IPv4Address(0), subnet: pool.subnet, pool: pool, decision: decision, link: link)
            ack.message.clientAddress = request.clientAddress
            for code in [DHCPOptionCode.leaseTime, .renewalTime, .rebindingTime] { ack.message.options[code] = nil }
            return DHCPOutcome(reply: ack, decision: decision, note: "inform answered")

        case .offer, .ack, .nak:
            return .silent("server message from a client")
        }
    }

    private func respondToRequest(
        _ request: DHCPMessage, facts: DHCPClientFacts, pool: inout LeasePool, decision: BootDecision, link: DHCPLink, now: Date
    ) -> DHCPOutcome {
        let address: IPv4Address
        if let server = facts.serverIdentifier {
            // SELECTING: the client answers one server's offer.
            guard server == link.serverAddress else {
                pool.withdrawOffer(to: facts.mac)
                return .silent("client chose server \(server)")
            }
            guard let requested = facts.requestedAddress else { return .silent("selecting request without a requested address") }
            address = requested
        } else if let requested = facts.requestedAddress, facts.clientAddress.value == 0 {
            // INIT-REBOOT: silent when we have no record of the client (RFC 2131 §4.3.2).
            guard pool.lease(for: facts.mac) != nil || pool.reservation(for: facts.mac) != nil else {
                return .silent("init-reboot of \(requested) by a client we have no record of")
            }
            // Asking for another address than the one it holds here: wrong (RFC 2131 §4.3.2), start over.
            if let held = pool.lease(for: facts.mac), held.state == .bound, held.expiresAt > now, held.address != requested {
                return DHCPOutcome(reply: nak(to: request, link: link, message: "\(requested) is not your address"), note: "nak: init-reboot of \(requested), client holds \(held.address)")
            }
            address = requested
        } else if facts.clientAddress.value != 0 {
            // RENEWING (unicast) or REBINDING (broadcast).
            address = facts.clientAddress
        } else {
            return .silent("request without a server identifier, requested address or ciaddr")
        }
        switch pool.bind(address, to: facts.mac, hostname: facts.hostname, now: now) {
        case .success(let lease):
            var ack = reply(.ack, to: request, facts: facts, address: address, subnet: pool.subnet, pool: pool, decision: decision, link: link)
            if facts.clientAddress.value != 0 { ack.message.clientAddress = facts.clientAddress }
            return DHCPOutcome(reply: ack, leaseChanges: [lease], decision: decision, note: "acknowledged \(address)")
        case .failure(let refusal):
            let why = refusal == .inUse ? "\(address) is held by another client" : "\(address) is not an address for this client here"
            return DHCPOutcome(reply: nak(to: request, link: link, message: why), note: "nak: \(why)")
        }
    }

    // MARK: Proxy mode

    /// Beside another DHCP server: boot information for network-boot clients, never an address.
    /// `bootServerPort` is true for requests on port 4011 (PXE boot-server discovery).
    public func respondAsProxy(
        to request: DHCPMessage, facts: DHCPClientFacts, machine: KnownMachine, link: DHCPLink, bootServerPort: Bool
    ) -> DHCPOutcome {
        guard facts.wantsNetworkBoot else { return .silent("proxy: not a network-boot client") }
        let type: DHCPMessageType
        switch (facts.messageType, bootServerPort) {
        case (.discover, false): type = .offer
        case (.request, true), (.inform, true): type = .ack
        case (.request, false): return .silent("proxy: the address server answers requests on port 67")
        default: return .silent("proxy: \(facts.messageType) is not answered")
        }
        let decision = policy.decide(facts, machine: machine, bootBaseURL: link.bootBaseURL)
        guard decision.answer != .none else { return DHCPOutcome(reply: nil, decision: decision, note: "proxy: no boot answer (\(decision.reason))") }
        var message = base(type, to: request, link: link)
        applyBoot(decision, to: &message, facts: facts, nextServer: link.serverAddress)
        if facts.isPXEClient {
            // Firmware and iPXE take an offer without an address as ProxyDHCP only with vendor class
            // PXEClient; discovery control 8 means boot the file named here, skip boot-server discovery.
            message.options.set(.vendorClassIdentifier, string: "PXEClient")
            message.options[.vendorSpecific] = [6, 1, 8, 255]
        }
        if let uuid = request.options[.clientMachineIdentifier] { message.options[.clientMachineIdentifier] = uuid }
        let destination: DHCPReplyDestination = bootServerPort ? .sender : request.relayAgentAddress.value != 0 ? .relay(request.relayAgentAddress) : .broadcast
        return DHCPOutcome(reply: DHCPReply(message: message, destination: destination), decision: decision, note: "proxy \(type)")
    }

    // MARK: Building replies

    private func base(_ type: DHCPMessageType, to request: DHCPMessage, link: DHCPLink) -> DHCPMessage {
        var message = DHCPMessage(operation: .reply, transactionID: request.transactionID)
        message.hardwareType = request.hardwareType
        message.hardwareAddressLength = request.hardwareAddressLength
        message.clientHardwareAddress = request.clientHardwareAddress
        message.flags = request.flags
        message.relayAgentAddress = request.relayAgentAddress
        message.options.set(messageType: type)
        message.options.set(.serverIdentifier, address: link.serverAddress)
        return message
    }

    private func reply(
        _ type: DHCPMessageType, to request: DHCPMessage, facts: DHCPClientFacts, address: IPv4Address, subnet: Subnet, pool: LeasePool,
        decision: BootDecision, link: DHCPLink
    ) -> DHCPReply {
        var message = base(type, to: request, link: link)
        message.yourAddress = address
        let lease = UInt32(subnet.leaseSeconds)
        message.options.set(.leaseTime, uint32: lease)
        message.options.set(.renewalTime, uint32: lease / 2)
        message.options.set(.rebindingTime, uint32: lease / 8 * 7)
        message.options.set(.subnetMask, address: subnet.network.netmask)
        message.options.set(.broadcastAddress, address: subnet.network.broadcast)
        if let router = subnet.router { message.options.set(.router, address: router) }
        if !subnet.dnsServers.isEmpty { message.options.set(.domainNameServer, addresses: subnet.dnsServers) }
        if let domain = subnet.domain { message.options.set(.domainName, string: domain) }
        if !subnet.ntpServers.isEmpty { message.options.set(.ntpServers, addresses: subnet.ntpServers) }
        if let hostname = pool.reservation(for: facts.mac)?.hostname { message.options.set(.hostName, string: hostname) }
        applyBoot(decision, to: &message, facts: facts, nextServer: subnet.nextServer ?? link.serverAddress)
        // RFC 3046: relay agent information goes back unchanged, last.
        if let relayInformation = request.options[.relayAgentInformation] { message.options[.relayAgentInformation] = relayInformation }
        return DHCPReply(message: message, destination: destination(for: request, nak: false))
    }

    private func nak(to request: DHCPMessage, link: DHCPLink, message text: String) -> DHCPReply {
        var message = base(.nak, to: request, link: link)
        message.options.set(.message, string: text)
        if request.relayAgentAddress.value != 0 { message.isBroadcast = true }
        if let relayInformation = request.options[.relayAgentInformation] { message.options[.relayAgentInformation] = relayInformation }
        return DHCPReply(message: message, destination: destination(for: request, nak: true))
    }

    /// RFC 2131 §4.1. A client without an address is answered by broadcast even without the
    /// broadcast flag: unicast to an unconfigured client would need an ARP entry planted first.
    private func destination(for request: DHCPMessage, nak: Bool) -> DHCPReplyDestination {
        if request.relayAgentAddress.value != 0 { return .relay(request.relayAgentAddress) }
        if !nak, request.clientAddress.value != 0 { return .unicast(request.clientAddress) }
        return .broadcast
    }

    private func applyBoot(_ decision: BootDecision, to message: inout DHCPMessage, facts: DHCPClientFacts, nextServer: IPv4Address) {
        switch decision.answer {
        case .none:
            return
        case .tftp(let file):
            message.serverAddress = nextServer
            message.bootFile = file
            message.options.set(.tftpServerName, string: nextServer.description)
            message.options.set(.bootfileName, string: file)
            message.options.set(.vendorClassIdentifier, string: "PXEClient")
            // PXE discovery control 8: boot the file named here. Without option 43, UEFI PXE (EDK2)
            // takes the offer for a BINL one and ignores it ("PXE-E16: No valid offer received").
            message.options[.vendorSpecific] = [6, 1, 8, 255]
        case .http(let url):
            message.bootFile = url.utf8.count < 128 ? url : ""
            message.options.set(.bootfileName, string: url)
            message.options.set(.vendorClassIdentifier, string: "HTTPClient")
        case .ipxeScript(let url):
            message.serverAddress = nextServer
            message.bootFile = url.utf8.count < 128 ? url : ""
            message.options.set(.bootfileName, string: url)
            // iPXE option 175.176 "no-pxedhcp": do not wait ~3 s for ProxyDHCP offers.
            message.options[.ipxeEncapsulated] = [176, 1, 1]
        }
    }
}
