import BootPolicy
import DHCPWire
import Foundation
import NetworkPrimitives
import ProvisioningModel
import Testing

/// RFC 2131 §4.3 server behaviour and the netboot options, message in, reply out.
@Suite("DHCP responder")
struct DHCPResponderTests {
    let responder = DHCPResponder(policy: BootPolicy())
    let relayAgent = IPv4Address(10, 0, 9, 1)
    let otherServer = IPv4Address(10, 0, 0, 3)
    let otherClient = Fixture.mac(0xB)
    /// Option 82 as a relay adds it: circuit id "eth0/1", remote id 3 bytes.
    let relayInformation: [UInt8] = [1, 6] + Array("eth0/1".utf8) + [2, 3, 0xAA, 0xBB, 0xCC]
    let pxeBIOSVendorClass = "PXEClient:Arch:00000:UNDI:002001"

    func makePool(subnet: Subnet = Fixture.subnet(), leases: [Lease] = []) -> LeasePool {
        LeasePool(subnet: subnet, leases: leases)
    }

    /// `Fixture.clientMAC` holding `address` until an hour after the fixed clock, as restored at start-up.
    func clientLease(_ address: IPv4Address, mac: MACAddress = Fixture.clientMAC) -> Lease {
        Lease(address: address, mac: mac, subnet: Fixture.subnetName, state: .bound, expiresAt: Fixture.now.addingTimeInterval(3600))
    }

    func respond(_ request: DHCPMessage, pool: inout LeasePool, machine: KnownMachine = .unknown, at now: Date = Fixture.now) throws
        -> DHCPOutcome
    {
        responder.respond(to: request, facts: try DHCPClientFacts(message: request), pool: &pool, machine: machine, link: Fixture.link, now: now)
    }

    func respondAsProxy(_ request: DHCPMessage, bootServerPort: Bool) throws -> DHCPOutcome {
        responder.respondAsProxy(
            to: request, facts: try DHCPClientFacts(message: request), machine: .unknown, link: Fixture.link, bootServerPort: bootServerPort)
    }

    /// The reply an outcome sends, checked to survive the wire: the client decodes what was built.
    func sent(_ outcome: DHCPOutcome, sourceLocation: SourceLocation = #_sourceLocation) throws -> DHCPReply {
        let reply = try #require(outcome.reply, "no reply: \(outcome.note)", sourceLocation: sourceLocation)
        #expect(try DHCPMessage(buffer: reply.message.encoded) == reply.message, sourceLocation: sourceLocation)
        return reply
    }

    /// A REQUEST answering our offer of `address` (SELECTING).
    func selectingRequest(_ address: IPv4Address, server: IPv4Address = Fixture.serverAddress) -> DHCPMessage {
        clientMessage(.request) { message in
            message.options.set(.serverIdentifier, address: server)
            message.options.set(.requestedAddress, address: address)
        }
    }

    // MARK: DISCOVER

    @Test("DISCOVER gets an OFFER with an address, the lease options and the request's identity")
    func discoverGetsOffer() throws {
        var pool = makePool()
        let discover = clientMessage(.discover, transactionID: 0xCAFE_F00D) { $0.isBroadcast = true }
        let outcome = try respond(discover, pool: &pool)
        let reply = try sent(outcome)
        let offer = reply.message

        #expect(offer.operation == .reply)
        #expect(try offer.messageType() == .offer)
        #expect(Fixture.range.contains(offer.yourAddress))
        #expect(offer.clientAddress == IPv4Address(0))
        #expect(try offer.options.address(.serverIdentifier) == Fixture.serverAddress)
        #expect(try offer.options.uint32(.leaseTime) == 3600)
        #expect(try offer.options.uint32(.renewalTime) == 1800)
        #expect(try offer.options.uint32(.rebindingTime) == 3150)
        #expect(try offer.options.address(.subnetMask) == IPv4Address(255, 255, 255, 0))
        #expect(try offer.options.addresses(.router) == [Fixture.address(1)])
        #expect(try offer.options.addresses(.domainNameServer) == [Fixture.address(1)])
        #expect(offer.transactionID == 0xCAFE_F00D)
        #expect(offer.clientHardwareAddress == discover.clientHardwareAddress)
        #expect(offer.flags == discover.flags)
        #expect(offer.relayAgentAddress == IPv4Address(0))
        #expect(reply.destination == .broadcast)
        #expect(outcome.leaseChanges.isEmpty)  // an offer is held in memory, not persisted
    }

    @Test("a relayed DISCOVER is answered to the relay agent, giaddr copied")
    func relayedDiscover() throws {
        var pool = makePool()
        let discover = clientMessage(.discover) { $0.relayAgentAddress = relayAgent }
        let reply = try sent(try respond(discover, pool: &pool))
        #expect(reply.message.relayAgentAddress == relayAgent)
        #expect(reply.destination == .relay(relayAgent))
    }

    @Test("DISCOVER on a full subnet: no reply, and the outcome says exhausted")
    func exhaustion() throws {
        var pool = makePool()
        let others = (0..<Fixture.range.count).compactMap { pool.offer(to: Fixture.mac($0), requested: nil, now: Fixture.now) }
        #expect(others.count == Fixture.range.count)
        let outcome = try respond(clientMessage(.discover), pool: &pool)
        #expect(outcome.reply == nil)
        #expect(outcome.exhausted)
    }

    // MARK: REQUEST

    @Test("SELECTING with our server identifier: ACK and one lease to persist")
    func selectingOurServer() throws {
        var pool = makePool()
        let offered = try sent(try respond(clientMessage(.discover), pool: &pool)).message.yourAddress
        let outcome = try respond(selectingRequest(offered), pool: &pool, at: Fixture.now.addingTimeInterval(1))
        let reply = try sent(outcome)

        #expect(try reply.message.messageType() == .ack)
        #expect(reply.message.yourAddress == offered)
        #expect(try reply.message.options.uint32(.leaseTime) == 3600)
        #expect(reply.destination == .broadcast)
        #expect(outcome.leaseChanges.count == 1)
        let lease = try #require(outcome.leaseChanges.first)
        #expect(lease.address == offered && lease.mac == Fixture.clientMAC && lease.state == .bound)
        #expect(lease.expiresAt == Fixture.now.addingTimeInterval(1 + 3600))
    }

    @Test("SELECTING another server: no reply, and our offer is withdrawn")
    func selectingOtherServer() throws {
        var pool = makePool()
        let offered = try sent(try respond(clientMessage(.discover), pool: &pool)).message.yourAddress
        #expect(!pool.isAvailable(offered, for: otherClient, now: Fixture.now))

        let outcome = try respond(selectingRequest(offered, server: otherServer), pool: &pool)
        #expect(outcome.reply == nil)
        #expect(outcome.leaseChanges.isEmpty)
        #expect(pool.isAvailable(offered, for: otherClient, now: Fixture.now))
    }

    /// INIT-REBOOT: no server identifier, no ciaddr, the remembered address in option 50.
    func initRebootRequest(_ address: IPv4Address, relayedBy relay: IPv4Address? = nil) -> DHCPMessage {
        clientMessage(.request) { message in
            message.options.set(.requestedAddress, address: address)
            if let relay { message.relayAgentAddress = relay }
        }
    }

    @Test("INIT-REBOOT from a client we have no record of: silent (RFC 2131 §4.3.2)")
    func initRebootUnknownClient() throws {
        var pool = makePool()
        let outcome = try respond(initRebootRequest(Fixture.address(100)), pool: &pool)
        #expect(outcome.reply == nil)
        #expect(outcome.leaseChanges.isEmpty)
    }

    @Test("INIT-REBOOT for the client's own address: ACK")
    func initRebootOwnAddress() throws {
        var pool = makePool(leases: [clientLease(Fixture.address(100))])
        let outcome = try respond(initRebootRequest(Fixture.address(100)), pool: &pool)
        let reply = try sent(outcome)
        #expect(try reply.message.messageType() == .ack)
        #expect(reply.message.yourAddress == Fixture.address(100))
        #expect(reply.destination == .broadcast)
        #expect(outcome.leaseChanges.count == 1)
    }

    @Test("INIT-REBOOT for an address someone else holds: NAK, broadcast; relayed NAKs set the broadcast bit",
          arguments: [nil, IPv4Address(10, 0, 9, 1)])
    func initRebootAddressHeldByAnother(relay: IPv4Address?) throws {
        var pool = makePool(leases: [clientLease(Fixture.address(100)), clientLease(Fixture.address(101), mac: otherClient)])
        let request = initRebootRequest(Fixture.address(101), relayedBy: relay)
        let outcome = try respond(request, pool: &pool)
        let reply = try sent(outcome)
        let nak = reply.message

        #expect(try nak.messageType() == .nak)
        #expect(try nak.options.address(.serverIdentifier) == Fixture.serverAddress)
        // RFC 2131 table 3: a NAK carries no address and no lease time.
        #expect(nak.yourAddress == IPv4Address(0))
        #expect(nak.options[.leaseTime] == nil)
        #expect(outcome.leaseChanges.isEmpty)
        if let relay {
            #expect(reply.destination == .relay(relay))
            #expect(nak.isBroadcast)
        } else {
            #expect(reply.destination == .broadcast)
        }
    }

    @Test("INIT-REBOOT for an address from another network: NAK")
    func initRebootWrongNetwork() throws {
        var pool = makePool(leases: [clientLease(Fixture.address(100))])
        let reply = try sent(try respond(initRebootRequest(IPv4Address(192, 168, 7, 20)), pool: &pool))
        #expect(try reply.message.messageType() == .nak)
        #expect(reply.destination == .broadcast)
    }

    @Test("RENEWING (ciaddr set): ACK unicast to ciaddr, lease extended")
    func renewing() throws {
        var pool = makePool(leases: [clientLease(Fixture.address(100))])
        let renew = clientMessage(.request) { $0.clientAddress = Fixture.address(100) }
        let now = Fixture.now.addingTimeInterval(1800)
        let outcome = try respond(renew, pool: &pool, at: now)
        let reply = try sent(outcome)

        #expect(try reply.message.messageType() == .ack)
        #expect(reply.message.yourAddress == Fixture.address(100))
        #expect(reply.message.clientAddress == Fixture.address(100))
        #expect(reply.destination == .unicast(Fixture.address(100)))
        #expect(outcome.leaseChanges.map(\.expiresAt) == [now.addingTimeInterval(3600)])
    }

    // MARK: RELEASE, DECLINE, INFORM

    @Test("RELEASE: the lease becomes released, no reply")
    func release() throws {
        var pool = makePool(leases: [clientLease(Fixture.address(100))])
        let release = clientMessage(.release) { message in
            message.clientAddress = Fixture.address(100)
            message.options.set(.serverIdentifier, address: Fixture.serverAddress)
        }
        let outcome = try respond(release, pool: &pool)
        #expect(outcome.reply == nil)
        #expect(outcome.leaseChanges.map(\.state) == [.released])
        #expect(outcome.leaseChanges.map(\.address) == [Fixture.address(100)])
    }

    @Test("DECLINE: the lease becomes declined, no reply")
    func decline() throws {
        var pool = makePool(leases: [clientLease(Fixture.address(100))])
        let decline = clientMessage(.decline) { message in
            message.options.set(.requestedAddress, address: Fixture.address(100))
            message.options.set(.serverIdentifier, address: Fixture.serverAddress)
        }
        let outcome = try respond(decline, pool: &pool)
        #expect(outcome.reply == nil)
        #expect(outcome.leaseChanges.map(\.state) == [.declined])
        #expect(outcome.leaseChanges.map(\.address) == [Fixture.address(100)])
    }

    @Test("INFORM: ACK to ciaddr with configuration but no address and no lease times (RFC 2131 §4.3.5)")
    func inform() throws {
        var pool = makePool()
        let staticAddress = Fixture.address(50)
        let outcome = try respond(clientMessage(.inform) { $0.clientAddress = staticAddress }, pool: &pool)
        let reply = try sent(outcome)
        let ack = reply.message

        #expect(try ack.messageType() == .ack)
        #expect(ack.yourAddress == IPv4Address(0))
        #expect(ack.clientAddress == staticAddress)
        for code in [DHCPOptionCode.leaseTime, .renewalTime, .rebindingTime] { #expect(ack.options[code] == nil, "\(code)") }
        #expect(try ack.options.address(.subnetMask) == IPv4Address(255, 255, 255, 0))
        #expect(try ack.options.addresses(.router) == [Fixture.address(1)])
        #expect(reply.destination == .unicast(staticAddress))
        #expect(outcome.leaseChanges.isEmpty)
    }

    // MARK: Relay agent information

    @Test("option 82 is echoed unchanged, last, in OFFER, ACK and NAK (RFC 3046)")
    func relayAgentInformationEchoed() throws {
        var pool = makePool(leases: [clientLease(Fixture.address(101), mac: otherClient)])
        func relayed(_ message: DHCPMessage) -> DHCPMessage {
            var message = message
            message.relayAgentAddress = relayAgent
            message.options[.relayAgentInformation] = relayInformation
            return message
        }
        let offer = try sent(try respond(relayed(clientMessage(.discover)), pool: &pool)).message
        let ack = try sent(try respond(relayed(selectingRequest(offer.yourAddress)), pool: &pool)).message
        let nak = try sent(try respond(relayed(initRebootRequest(Fixture.address(101))), pool: &pool)).message
        for reply in [offer, ack, nak] {
            #expect(reply.options[.relayAgentInformation] == relayInformation)
            #expect(reply.options.codes.last == .relayAgentInformation)
        }
        #expect(try [offer, ack, nak].map { try $0.messageType() } == [.offer, .ack, .nak])
    }

    // MARK: Boot information

    @Test("a PXE BIOS client gets siaddr, file undionly.kpxe and option 67",
          arguments: [nil, IPv4Address(10, 0, 0, 9)])
    func pxeBIOSBootInformation(nextServer: IPv4Address?) throws {
        var pool = makePool(subnet: Fixture.subnet(nextServer: nextServer))
        let discover = clientMessage(.discover) { message in
            message.options[.clientSystemArchitecture] = [0, 0]
            message.options.set(.vendorClassIdentifier, string: pxeBIOSVendorClass)
        }
        let offer = try sent(try respond(discover, pool: &pool)).message
        #expect(offer.serverAddress == nextServer ?? Fixture.serverAddress)
        #expect(offer.bootFile == "undionly.kpxe")
        #expect(offer.options.string(.bootfileName) == "undionly.kpxe")
        #expect(offer.options.string(.vendorClassIdentifier) == "PXEClient")
    }

    @Test("a UEFI HTTP Boot client gets vendor class HTTPClient and the loader URL in option 67")
    func httpBootInformation() throws {
        var pool = makePool()
        let discover = clientMessage(.discover) { message in
            message.options[.clientSystemArchitecture] = [0, 16]
            message.options.set(.vendorClassIdentifier, string: "HTTPClient:Arch:00016")
        }
        let offer = try sent(try respond(discover, pool: &pool)).message
        #expect(offer.options.string(.vendorClassIdentifier) == "HTTPClient")
        #expect(offer.options.string(.bootfileName) == "http://10.0.0.2:8080/files/ipxe.efi")
    }

    @Test("an iPXE client gets its script URL and option 175 no-pxedhcp")
    func ipxeBootInformation() throws {
        var pool = makePool()
        let discover = clientMessage(.discover) { message in
            message.options[.clientSystemArchitecture] = [0, 7]
            message.options.set(.vendorClassIdentifier, string: "PXEClient:Arch:00007:UNDI:003016")
            message.options.set(.userClass, string: "iPXE")
        }
        let offer = try sent(try respond(discover, pool: &pool)).message
        #expect(offer.options[.ipxeEncapsulated] == [176, 1, 1])
        #expect(offer.options.string(.bootfileName) == Fixture.clientScriptURL)
    }

    // MARK: Proxy mode

    /// Option 97 as firmware sends it: type 0 and 16 bytes.
    let machineIdentifier: [UInt8] = [0] + (1...16).map { UInt8($0) }

    func pxeProxyClient(_ type: DHCPMessageType, userClass: String? = nil) -> DHCPMessage {
        clientMessage(type) { message in
            message.options[.clientSystemArchitecture] = [0, 7]
            message.options.set(.vendorClassIdentifier, string: "PXEClient:Arch:00007:UNDI:003016")
            message.options[.clientMachineIdentifier] = machineIdentifier
            if let userClass { message.options.set(.userClass, string: userClass) }
        }
    }

    @Test("proxy: a PXE DISCOVER on port 67 gets a boot-only OFFER")
    func proxyOffer() throws {
        let outcome = try respondAsProxy(pxeProxyClient(.discover), bootServerPort: false)
        let reply = try sent(outcome)
        let offer = reply.message

        #expect(try offer.messageType() == .offer)
        #expect(offer.yourAddress == IPv4Address(0))
        #expect(offer.options[.leaseTime] == nil)
        #expect(try offer.options.address(.serverIdentifier) == Fixture.serverAddress)
        #expect(offer.bootFile == "ipxe.efi")
        #expect(offer.options.string(.bootfileName) == "ipxe.efi")
        #expect(offer.options.string(.vendorClassIdentifier) == "PXEClient")
        #expect(offer.options[.vendorSpecific] == [6, 1, 8, 255])  // discovery control: use this file
        #expect(offer.options[.clientMachineIdentifier] == machineIdentifier)
        #expect(reply.destination == .broadcast)
        #expect(outcome.leaseChanges.isEmpty)
    }

    /// iPXE takes a yiaddr-less offer as ProxyDHCP only when it carries vendor class "PXEClient"
    /// (`dhcp_discovery_rx` in iPXE's net/udp/dhcp.c); without it the script URL is never used.
    @Test("proxy: an iPXE client's OFFER carries vendor class PXEClient")
    func proxyOfferToIPXE() throws {
        let offer = try sent(try respondAsProxy(pxeProxyClient(.discover, userClass: "iPXE"), bootServerPort: false)).message
        #expect(offer.options.string(.bootfileName) == Fixture.clientScriptURL)
        #expect(offer.options.string(.vendorClassIdentifier) == "PXEClient")
    }

    @Test("proxy: a client that does not network-boot gets no reply")
    func proxyIgnoresNonPXEClient() throws {
        let outcome = try respondAsProxy(clientMessage(.discover), bootServerPort: false)
        #expect(outcome.reply == nil)
    }

    @Test("proxy: a REQUEST on port 67 is the address server's; on port 4011 it gets an ACK back to the sender")
    func proxyRequest() throws {
        #expect(try respondAsProxy(pxeProxyClient(.request), bootServerPort: false).reply == nil)

        let reply = try sent(try respondAsProxy(pxeProxyClient(.request), bootServerPort: true))
        #expect(try reply.message.messageType() == .ack)
        #expect(reply.message.bootFile == "ipxe.efi")
        #expect(reply.destination == .sender)
    }
}
