import ApplianceTesting
import BootPolicy
import Foundation
import NetworkPrimitives
import ProvisioningModel
import Testing

/// Address allocation on the four-address lab range (.100–.103), with time injected.
@Suite("Lease pool")
struct LeasePoolTests {
    let clientA = Fixture.mac(0xA)
    let clientB = Fixture.mac(0xB)
    let clientC = Fixture.mac(0xC)
    let clientD = Fixture.mac(0xD)
    let clientE = Fixture.mac(0xE)

    /// `seconds` after the fixed clock.
    func at(_ seconds: TimeInterval) -> Date { Fixture.now.addingTimeInterval(seconds) }

    func makePool(reservations: [Reservation] = [], leases: [Lease] = []) -> LeasePool {
        LeasePool(subnet: Fixture.subnet(), reservations: reservations, leases: leases)
    }

    func boundLease(_ address: IPv4Address, to mac: MACAddress, until expiry: Date, subnet: String = Fixture.subnetName) -> Lease {
        Lease(address: address, mac: mac, subnet: subnet, state: .bound, expiresAt: expiry)
    }

    /// An offer that must be made. (`#require` cannot wrap the mutating call itself.)
    func requireOffer(
        _ pool: inout LeasePool, to mac: MACAddress, requested: IPv4Address? = nil, at now: Date,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> IPv4Address {
        let address = pool.offer(to: mac, requested: requested, now: now)
        return try #require(address, "no offer for \(mac)", sourceLocation: sourceLocation)
    }

    /// DISCOVER then REQUEST, as a client that gets what it is offered.
    @discardableResult
    func offerAndBind(_ pool: inout LeasePool, to mac: MACAddress, at now: Date, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> IPv4Address
    {
        let address = try requireOffer(&pool, to: mac, at: now, sourceLocation: sourceLocation)
        _ = try pool.bind(address, to: mac, hostname: nil, now: now).get()
        return address
    }

    // MARK: Offers

    @Test("offers come from the range, one address per client")
    func offersComeFromTheRange() throws {
        var pool = makePool()
        let offered = try [clientA, clientB, clientC, clientD].map { try requireOffer(&pool, to: $0, at: Fixture.now) }
        #expect(Set(offered) == Set(Fixture.range))
    }

    @Test("a repeated DISCOVER gets the same address, and does not hold a second one")
    func repeatedDiscoverGetsTheSameAddress() throws {
        var pool = makePool()
        let first = try requireOffer(&pool, to: clientA, at: Fixture.now)
        // PXE ROMs retransmit DISCOVER every few seconds until they see an offer.
        #expect(pool.offer(to: clientA, requested: nil, now: at(4)) == first)
        #expect(pool.offer(to: clientA, requested: nil, now: at(8)) == first)
        #expect(pool.usage(now: at(8)).held == 1)
    }

    @Test("a client is offered its bound address again, and its last address after a release")
    func clientGetsItsAddressAgain() throws {
        var pool = makePool()
        let address = try offerAndBind(&pool, to: clientA, at: Fixture.now)
        #expect(pool.offer(to: clientA, requested: nil, now: at(100)) == address)
        let released = pool.release(address, by: clientA, now: at(200))
        #expect(released?.state == .released)
        #expect(pool.offer(to: clientA, requested: nil, now: at(300)) == address)
    }

    @Test("a requested free address is honoured; a requested address outside the range is not")
    func requestedAddress() throws {
        var pool = makePool()
        #expect(pool.offer(to: clientA, requested: Fixture.address(102), now: Fixture.now) == Fixture.address(102))
        let instead = try requireOffer(&pool, to: clientB, requested: Fixture.address(200), at: Fixture.now)
        #expect(Fixture.subnet().rangeContains(instead))
    }

    // MARK: Reservations

    @Test("reservations inside and outside the range always give the reserved address, and only to its MAC")
    func reservations() throws {
        let inside = Reservation(mac: clientA, address: Fixture.address(101), subnet: Fixture.subnetName)
        let outside = Reservation(mac: clientB, address: Fixture.address(50), subnet: Fixture.subnetName)
        var pool = makePool(reservations: [inside, outside])

        #expect(pool.offer(to: clientA, requested: Fixture.address(102), now: Fixture.now) == Fixture.address(101))
        #expect(pool.offer(to: clientB, requested: nil, now: Fixture.now) == Fixture.address(50))
        #expect(pool.bind(Fixture.address(50), to: clientB, hostname: nil, now: Fixture.now).isSuccess)
        #expect(pool.bind(Fixture.address(102), to: clientA, hostname: nil, now: Fixture.now) == .failure(.wrongAddress))

        // Everyone else shares the three other addresses, even when asking for the reserved ones.
        var others: [IPv4Address] = []
        for (index, mac) in [clientC, clientD, clientE].enumerated() {
            let asked = index == 0 ? Fixture.address(101) : Fixture.address(50)
            others.append(try requireOffer(&pool, to: mac, requested: asked, at: Fixture.now))
        }
        #expect(Set(others) == Set([100, 102, 103].map(Fixture.address)))
        #expect(pool.offer(to: Fixture.mac(0xF), requested: nil, now: Fixture.now) == nil)
        #expect(pool.bind(Fixture.address(101), to: clientC, hostname: nil, now: Fixture.now) == .failure(.inUse))
        #expect(pool.bind(Fixture.address(50), to: clientC, hostname: nil, now: Fixture.now) == .failure(.wrongAddress))
    }

    @Test("a reservation for another subnet is not applied here")
    func reservationForAnotherSubnet() throws {
        let elsewhere = Reservation(mac: clientA, address: Fixture.address(101), subnet: "other")
        var pool = makePool(reservations: [elsewhere])
        #expect(pool.reservation(for: clientA) == nil)
        #expect(pool.offer(to: clientB, requested: Fixture.address(101), now: Fixture.now) == Fixture.address(101))
    }

    /// The pool's rule "an address is never given to two clients" applies when a reservation is
    /// added for an address a dynamic client still holds: the reserved MAC waits until that lease ends.
    @Test("a reservation does not take an address another client still holds")
    func reservationOverARunningLease() throws {
        let reservation = Reservation(mac: clientA, address: Fixture.address(101), subnet: Fixture.subnetName)
        var pool = makePool(reservations: [reservation], leases: [boundLease(Fixture.address(101), to: clientB, until: at(3600))])

        #expect(pool.offer(to: clientA, requested: nil, now: Fixture.now) != Fixture.address(101))
        #expect(pool.bind(Fixture.address(101), to: clientA, hostname: nil, now: Fixture.now) == .failure(.inUse))
        // The holder cannot renew an address now reserved for someone else, so it moves off soon.
        #expect(pool.bind(Fixture.address(101), to: clientB, hostname: nil, now: at(1800)) == .failure(.inUse))
        #expect(pool.offer(to: clientA, requested: nil, now: at(3601)) == Fixture.address(101))
    }

    // MARK: Offers hold, binds refuse

    @Test("an outstanding offer blocks the address for other clients until offerHold passes")
    func offerHold() throws {
        var pool = makePool()
        let held = try requireOffer(&pool, to: clientA, at: Fixture.now)
        let duringHold = at(pool.offerHold - 1)
        #expect(!pool.isAvailable(held, for: clientB, now: duringHold))
        #expect(pool.offer(to: clientB, requested: held, now: duringHold) != held)
        #expect(pool.bind(held, to: clientB, hostname: nil, now: duringHold) == .failure(.inUse))

        let afterHold = at(pool.offerHold + 1)
        #expect(pool.offer(to: clientC, requested: held, now: afterHold) == held)
        #expect(pool.bind(held, to: clientC, hostname: nil, now: afterHold).isSuccess)
    }

    @Test("binding an address another client holds fails with inUse")
    func bindHeldAddress() throws {
        var pool = makePool()
        let address = try offerAndBind(&pool, to: clientA, at: Fixture.now)
        #expect(pool.bind(address, to: clientB, hostname: nil, now: at(60)) == .failure(.inUse))
    }

    @Test("binding outside the range fails with wrongAddress",
          arguments: [Fixture.address(99), Fixture.address(104), Fixture.address(200), IPv4Address(192, 168, 1, 5)])
    func bindOutsideRange(_ address: IPv4Address) {
        var pool = makePool()
        #expect(pool.bind(address, to: clientA, hostname: nil, now: Fixture.now) == .failure(.wrongAddress))
    }

    // MARK: Exhaustion and reuse

    /// Four clients bound at the fixed clock: the range is full.
    func fullPool() throws -> (pool: LeasePool, addresses: [MACAddress: IPv4Address]) {
        var pool = makePool()
        var addresses: [MACAddress: IPv4Address] = [:]
        for mac in [clientA, clientB, clientC, clientD] { addresses[mac] = try offerAndBind(&pool, to: mac, at: Fixture.now) }
        return (pool, addresses)
    }

    @Test("a full pool offers nothing; a released address is offered again")
    func exhaustionThenRelease() throws {
        var (pool, addresses) = try fullPool()
        #expect(pool.offer(to: clientE, requested: nil, now: at(10)) == nil)

        let address = try #require(addresses[clientB])
        #expect(pool.release(address, by: clientA, now: at(20)) == nil)  // only the holder releases
        let released = pool.release(address, by: clientB, now: at(20))
        #expect(released?.state == .released)
        #expect(pool.offer(to: clientE, requested: nil, now: at(30)) == address)
    }

    @Test("a full pool frees its addresses when the leases expire and are reclaimed")
    func exhaustionThenExpiry() throws {
        var (pool, addresses) = try fullPool()
        #expect(pool.offer(to: clientE, requested: nil, now: at(3599)) == nil)

        let reclaimed = pool.reclaimExpired(now: at(3601))
        #expect(Set(reclaimed.map(\.address)) == Set(addresses.values))
        #expect(reclaimed.allSatisfy { $0.state == .expired })
        let address = try requireOffer(&pool, to: clientE, at: at(3601))
        #expect(pool.bind(address, to: clientE, hostname: nil, now: at(3601)).isSuccess)
    }

    // MARK: Decline

    @Test("a declined address is on probation, and the decliner gets another address")
    func decline() throws {
        var pool = makePool()
        let declined = try offerAndBind(&pool, to: clientA, at: Fixture.now)
        #expect(pool.decline(declined, by: clientB, now: at(1)) == nil)  // only the holder declines
        let declinedLease = pool.decline(declined, by: clientA, now: at(1))
        let lease = try #require(declinedLease)
        #expect(lease.state == .declined)
        #expect(lease.expiresAt == at(1 + pool.declineProbation))

        let next = try offerAndBind(&pool, to: clientA, at: at(2))
        #expect(next != declined)
        try offerAndBind(&pool, to: clientB, at: at(2))
        try offerAndBind(&pool, to: clientC, at: at(2))
        // Only the declined address is left, and it is on probation.
        #expect(pool.offer(to: clientD, requested: declined, now: at(60)) == nil)
        #expect(pool.bind(declined, to: clientD, hostname: nil, now: at(60)) == .failure(.inUse))
        #expect(pool.offer(to: clientD, requested: nil, now: at(2 + pool.declineProbation)) == declined)
    }

    // MARK: Restart

    @Test("a lease restored at start-up keeps its address from other clients")
    func restoredLeaseIsHonoured() throws {
        let restored = boundLease(Fixture.address(100), to: clientA, until: at(3600))
        var pool = makePool(leases: [restored])

        var offered: [IPv4Address] = []
        for mac in [clientB, clientC, clientD] { offered.append(try requireOffer(&pool, to: mac, requested: Fixture.address(100), at: Fixture.now)) }
        #expect(!offered.contains(Fixture.address(100)))
        #expect(pool.offer(to: clientE, requested: nil, now: Fixture.now) == nil)
        #expect(pool.bind(Fixture.address(100), to: clientE, hostname: nil, now: Fixture.now) == .failure(.inUse))
        #expect(pool.lease(for: clientA) == restored)
        #expect(pool.offer(to: clientA, requested: nil, now: Fixture.now) == Fixture.address(100))
    }

    @Test("restored declined and foreign leases: probation kept, other subnets ignored")
    func restoredDeclinedAndForeignLeases() throws {
        let declined = Lease(address: Fixture.address(100), mac: clientA, subnet: Fixture.subnetName, state: .declined, expiresAt: at(300))
        let foreign = boundLease(Fixture.address(101), to: clientB, until: at(3600), subnet: "other")
        let pool = makePool(leases: [declined, foreign])
        #expect(!pool.isAvailable(Fixture.address(100), for: clientC, now: at(299)))
        #expect(pool.isAvailable(Fixture.address(100), for: clientC, now: at(300)))
        #expect(pool.isAvailable(Fixture.address(101), for: clientC, now: Fixture.now))
        #expect(pool.lease(for: clientB) == nil)
    }

    // MARK: Scale and random churn

    @Test("a 10,000-address range fills with 10,000 distinct addresses")
    func fillLargeRange() throws {
        let start = IPv4Address(10, 32, 0, 10)
        let end = IPv4Address(start.value + 9_999)
        let subnet = Subnet(name: Fixture.subnetName, network: IPv4Network("10.32.0.0/16")!, rangeStart: start, rangeEnd: end)
        var pool = LeasePool(subnet: subnet)
        var random = SplitMix64(seed: 0x5EED_F111)
        var bound = Set<IPv4Address>()
        for index in 0..<10_000 {
            // Half the clients ask for an address they remember, often one that is already taken.
            let requested = Bool.random(using: &random) ? IPv4Address(UInt32.random(in: start.value...end.value, using: &random)) : nil
            let address = try requireOffer(&pool, to: Fixture.mac(index), requested: requested, at: Fixture.now)
            _ = try pool.bind(address, to: Fixture.mac(index), hostname: nil, now: Fixture.now).get()
            bound.insert(address)
        }
        #expect(bound.count == 10_000)
        #expect(bound.allSatisfy(subnet.rangeContains))
        #expect(pool.offer(to: Fixture.mac(10_000), requested: nil, now: Fixture.now) == nil)
    }

    @Test("random churn never gives an address to two clients at once, and never refuses a free one")
    func randomChurn() throws {
        var pool = makePool()
        var ledger = AddressLedger(leaseSeconds: TimeInterval(Fixture.subnet().leaseSeconds), offerHold: pool.offerHold,
                                   declineProbation: pool.declineProbation)
        var random = SplitMix64(seed: 2131)
        let clients = (0..<12).map(Fixture.mac)
        var now = Fixture.now

        for step in 0..<20_000 {
            // Mostly seconds pass between messages; sometimes long enough for offers, probation or leases to end.
            let longPause = Int.random(in: 0..<10, using: &random) == 0
            now += longPause ? TimeInterval.random(in: 20...4000, using: &random) : TimeInterval.random(in: 0...5, using: &random)
            let mac = clients.randomElement(using: &random)!
            let anyAddress = Fixture.range.randomElement(using: &random)!
            var problem: String?

            switch Int.random(in: 0..<100, using: &random) {
            case 0..<35:  // DISCOVER, sometimes asking for an address
                let requested = Bool.random(using: &random) ? anyAddress : nil
                if let address = pool.offer(to: mac, requested: requested, now: now) {
                    problem = ledger.blocker(of: address, for: mac, at: now)
                    ledger.offered[address] = (mac, now + ledger.offerHold)
                } else if let free = Fixture.range.first(where: { ledger.blocker(of: $0, for: mac, at: now) == nil }) {
                    problem = "offer to \(mac) found nothing although \(free) is free"
                }
            case 35..<75:  // REQUEST for what was offered, what is held, or any address
                let address = ledger.offeredAddress(to: mac) ?? ledger.heldAddress(of: mac) ?? anyAddress
                switch pool.bind(address, to: mac, hostname: nil, now: now) {
                case .success:
                    problem = ledger.blocker(of: address, for: mac, at: now)
                    ledger.held[address] = (mac, now + ledger.leaseSeconds)
                    ledger.offered[address] = nil
                case .failure(let refusal):
                    if refusal == .inUse, ledger.blocker(of: address, for: mac, at: now) == nil {
                        problem = "bind of free \(address) to \(mac) refused"
                    }
                }
            case 75..<85:  // RELEASE
                let address = ledger.heldAddress(of: mac) ?? anyAddress
                if pool.release(address, by: mac, now: now) != nil { ledger.held[address] = nil }
            case 85..<90:  // DECLINE
                let address = ledger.heldAddress(of: mac) ?? anyAddress
                if pool.decline(address, by: mac, now: now) != nil {
                    if let holder = ledger.held[address], holder.mac != mac, holder.until > now {
                        problem = "decline by \(mac) cancelled \(holder.mac)'s running lease on \(address)"
                    }
                    ledger.held[address] = nil
                    ledger.offered[address] = nil
                    ledger.probationUntil[address] = now + ledger.declineProbation
                }
            case 90..<95:  // REQUEST for another server
                pool.withdrawOffer(to: mac)
                ledger.offered = ledger.offered.filter { $0.value.mac != mac }
            default:
                _ = pool.reclaimExpired(now: now)
            }

            if let problem {
                Issue.record("step \(step): \(problem)")
                return
            }
        }
    }
}

/// What each address is doing, kept by the churn test from the pool's answers alone.
struct AddressLedger {
    var leaseSeconds: TimeInterval
    var offerHold: TimeInterval
    var declineProbation: TimeInterval
    var held: [IPv4Address: (mac: MACAddress, until: Date)] = [:]
    var offered: [IPv4Address: (mac: MACAddress, until: Date)] = [:]
    var probationUntil: [IPv4Address: Date] = [:]

    // The lowest address, not the first found: dictionary order changes from run to run, the seed must replay.
    func offeredAddress(to mac: MACAddress) -> IPv4Address? { offered.filter { $0.value.mac == mac }.keys.min() }
    func heldAddress(of mac: MACAddress) -> IPv4Address? { held.filter { $0.value.mac == mac }.keys.min() }

    /// Why `mac` may not have `address` now, or `nil` when it may.
    func blocker(of address: IPv4Address, for mac: MACAddress, at now: Date) -> String? {
        if let holder = held[address], holder.mac != mac, holder.until > now { return "\(address) is bound to \(holder.mac), not \(mac)" }
        if let offer = offered[address], offer.mac != mac, offer.until > now { return "\(address) is offered to \(offer.mac), not \(mac)" }
        if let until = probationUntil[address], until > now { return "\(address) is on probation" }
        return nil
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
