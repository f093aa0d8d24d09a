import Foundation
import NetworkPrimitives
import ProvisioningModel

/// The addresses of one full-mode subnet: who holds what, and which address to hand out next.
/// Pure and time-injected; the DHCP service persists the leases it returns before answering.
///
/// An address is never given to two clients: it is free only when nobody holds a lease on it that
/// is still running (or, if declined, still on probation), nobody has an outstanding offer on it,
/// and it is not reserved for another MAC.
public struct LeasePool: Sendable {
    public private(set) var subnet: Subnet
    public private(set) var leases: [IPv4Address: Lease] = [:]
    private var addressByMAC: [MACAddress: IPv4Address] = [:]
    private var reservationByMAC: [MACAddress: Reservation] = [:]
    private var reservedFor: [IPv4Address: MACAddress] = [:]
    private var offers: [IPv4Address: (mac: MACAddress, expiresAt: Date)] = [:]
    /// The address each client was last offered: a repeated DISCOVER gets the same one.
    private var offerByMAC: [MACAddress: IPv4Address] = [:]
    /// Where the search for a never-used address resumes, so a fill is linear, not quadratic.
    private var cursor: UInt32

    /// How long an offered address is held for the client's REQUEST.
    public var offerHold: TimeInterval = 30
    /// How long a declined address (someone else answered ARP for it) stays out of use.
    public var declineProbation: TimeInterval = 600

    public init(subnet: Subnet, reservations: [Reservation] = [], leases: [Lease] = []) {
        self.subnet = subnet
        cursor = subnet.rangeStart?.value ?? 0
        for reservation in reservations where reservation.subnet == subnet.name { add(reservation) }
        for lease in leases where lease.subnet == subnet.name { record(lease) }
    }

    /// Takes new subnet settings and reservations, keeping leases and offers.
    public mutating func reconfigure(subnet: Subnet, reservations: [Reservation]) {
        self.subnet = subnet
        reservationByMAC = [:]
        reservedFor = [:]
        for reservation in reservations where reservation.subnet == subnet.name { add(reservation) }
        if let start = subnet.rangeStart, let end = subnet.rangeEnd, !(start.value...end.value).contains(cursor) { cursor = start.value }
    }

    private mutating func add(_ reservation: Reservation) {
        reservationByMAC[reservation.mac] = reservation
        reservedFor[reservation.address] = reservation.mac
    }

    private mutating func record(_ lease: Lease) {
        if let previous = leases[lease.address], addressByMAC[previous.mac] == lease.address, previous.mac != lease.mac {
            addressByMAC[previous.mac] = nil
        }
        leases[lease.address] = lease
        if lease.state == .declined {
            if addressByMAC[lease.mac] == lease.address { addressByMAC[lease.mac] = nil }
        } else {
            addressByMAC[lease.mac] = lease.address
        }
    }

    public func reservation(for mac: MACAddress) -> Reservation? { reservationByMAC[mac] }

    /// The client's lease, whatever its state, unless it declined the address.
    public func lease(for mac: MACAddress) -> Lease? { addressByMAC[mac].flatMap { leases[$0] } }

    /// Whether `mac` may hold `address` now. A reserved address is its owner's only once nobody
    /// else holds it (a reservation made while another client has the address waits for that lease).
    public func isAvailable(_ address: IPv4Address, for mac: MACAddress, now: Date) -> Bool {
        if let owner = reservedFor[address], owner != mac { return false }
        guard reservedFor[address] == mac || subnet.rangeContains(address) else { return false }
        if let offer = offers[address], offer.mac != mac, offer.expiresAt > now { return false }
        guard let lease = leases[address] else { return true }
        switch lease.state {
        case .declined: return lease.expiresAt <= now
        case .released, .expired: return true
        case .offered, .bound: return lease.mac == mac || lease.expiresAt <= now
        }
    }

    /// Picks an address for a DISCOVER and holds it for the client; `nil` when the pool is exhausted.
    /// Order: the client's reservation, its current or last address, the address it asks for, a
    /// never-used address, then the free address that has been free longest.
    public mutating func offer(to mac: MACAddress, requested: IPv4Address?, now: Date) -> IPv4Address? {
        let address: IPv4Address?
        if let reservation = reservationByMAC[mac], isAvailable(reservation.address, for: mac, now: now) {
            address = reservation.address
        } else if let offered = offerByMAC[mac], isAvailable(offered, for: mac, now: now) {
            address = offered
        } else if let previous = addressByMAC[mac], isAvailable(previous, for: mac, now: now) {
            address = previous
        } else if let requested, isAvailable(requested, for: mac, now: now) {
            address = requested
        } else {
            address = nextUnused(for: mac, now: now) ?? longestFree(for: mac, now: now)
        }
        guard let address else { return nil }
        withdrawOffer(to: mac)
        offers[address] = (mac, now.addingTimeInterval(offerHold))
        offerByMAC[mac] = address
        return address
    }

    private mutating func nextUnused(for mac: MACAddress, now: Date) -> IPv4Address? {
        guard let start = subnet.rangeStart?.value, let end = subnet.rangeEnd?.value, start <= end else { return nil }
        let size = UInt64(end - start) + 1
        var candidate = min(max(cursor, start), end)
        for _ in 0..<size {
            let address = IPv4Address(candidate)
            candidate = candidate == end ? start : candidate + 1
            if leases[address] == nil, isAvailable(address, for: mac, now: now) {
                cursor = candidate
                return address
            }
        }
        return nil
    }

    private func longestFree(for mac: MACAddress, now: Date) -> IPv4Address? {
        leases.values.filter { isAvailable($0.address, for: mac, now: now) }.min { $0.expiresAt < $1.expiresAt }?.address
    }

    public enum RequestRefusal: Error, Equatable, Sendable {
        /// The address is not in this subnet's range (or not the client's reservation).
        case wrongAddress
        /// Another client holds or has been offered the address.
        case inUse
    }

    /// Binds `address` to `mac` for the subnet's lease time; the returned lease is to be persisted
    /// before the ACK goes out.
    public mutating func bind(_ address: IPv4Address, to mac: MACAddress, hostname: String?, now: Date) -> Result<Lease, RequestRefusal> {
        if let reservation = reservationByMAC[mac], reservation.address != address, isAvailable(reservation.address, for: mac, now: now) {
            return .failure(.wrongAddress)
        }
        guard reservedFor[address] == mac || subnet.rangeContains(address) else { return .failure(.wrongAddress) }
        guard isAvailable(address, for: mac, now: now) else { return .failure(.inUse) }
        withdrawOffer(to: mac)
        offers[address] = nil  // any other offer on it has run out
        let name = reservationByMAC[mac]?.hostname ?? hostname ?? leases[address].flatMap { $0.mac == mac ? $0.hostname : nil }
        let lease = Lease(
            address: address, mac: mac, subnet: subnet.name, state: .bound,
            expiresAt: now.addingTimeInterval(TimeInterval(subnet.leaseSeconds)), hostname: name)
        record(lease)
        return .success(lease)
    }

    /// The client chose another server: its offer from us is void.
    public mutating func withdrawOffer(to mac: MACAddress) {
        guard let address = offerByMAC.removeValue(forKey: mac) else { return }
        if offers[address]?.mac == mac { offers[address] = nil }
    }

    /// The client gives the address back (DHCPRELEASE). Only the holder can release.
    public mutating func release(_ address: IPv4Address, by mac: MACAddress, now: Date) -> Lease? {
        guard var lease = leases[address], lease.mac == mac, lease.state == .bound else { return nil }
        lease.state = .released
        lease.expiresAt = now
        record(lease)
        return lease
    }

    /// The client found the address in use (DHCPDECLINE): it is put on probation, and the client
    /// gets another one next time.
    public mutating func decline(_ address: IPv4Address, by mac: MACAddress, now: Date) -> Lease? {
        // Only the client holding (or being offered) the address can decline it.
        let holds = leases[address].map { $0.mac == mac && $0.state == .bound && $0.expiresAt > now } ?? false
        let offered = offers[address].map { $0.mac == mac && $0.expiresAt > now } ?? false
        guard reservedFor[address] == nil, holds || offered else { return nil }
        let declined = Lease(
            address: address, mac: mac, subnet: subnet.name, state: .declined, expiresAt: now.addingTimeInterval(declineProbation),
            hostname: nil)
        withdrawOffer(to: mac)
        record(declined)
        return declined
    }

    /// Bound leases whose time is up become `expired`; returns them for persisting. Expired
    /// offers are forgotten.
    public mutating func reclaimExpired(now: Date) -> [Lease] {
        offers = offers.filter { $0.value.expiresAt > now }
        offerByMAC = offerByMAC.filter { offers[$0.value]?.mac == $0.key }
        var reclaimed: [Lease] = []
        for var lease in leases.values where lease.state == .bound && lease.expiresAt <= now {
            lease.state = .expired
            record(lease)
            reclaimed.append(lease)
        }
        return reclaimed
    }

    /// Addresses in the dynamic range and how many are held now (bound, offered or on probation).
    public func usage(now: Date) -> (size: Int, held: Int) {
        guard let start = subnet.rangeStart?.value, let end = subnet.rangeEnd?.value, start <= end else { return (0, 0) }
        let held = Set(
            leases.values.filter { subnet.rangeContains($0.address) && !isAvailable($0.address, for: MACAddress(0, 0, 0, 0, 0, 0), now: now) }.map(\.address)
        ).union(offers.filter { $0.value.expiresAt > now && subnet.rangeContains($0.key) }.keys)
        return (Int(end - start) + 1, held.count)
    }
}
