import ApplianceTesting
import DHCPWire
import Foundation
import NIOCore
import NetworkPrimitives
import Testing

/// The real `anvil serve` answering real DHCP clients (dhclient, udhcpc, dhcpcd) and Anvil's own
/// probe, in namespaces the tests create: leases, renewals, releases, reservations, relays, proxy
/// mode beside dnsmasq, restarts, bad packets and exhaustion.
@Suite("DHCP with real clients", .serialized, .timeLimit(.minutes(10)))
struct DHCPClientsTests {
    /// Runs `body` with a fresh lab and removes it afterwards, also when `body` fails.
    func withLab(
        subnet extra: [String]? = [], arguments: [String] = [], prepare: @Sendable (DHCPLab) async throws -> Void = { _ in },
        _ body: (DHCPLab) async throws -> Void
    ) async throws {
        let lab = try await DHCPLab.start(extraArguments: arguments, prepare: prepare)
        do {
            if let extra { try await lab.createSubnet(extra: extra) }
            try await body(lab)
        } catch {
            Issue.record("server log:\n\(lab.anvil.log.suffix(4000))")
            lab.stop()
            throw error
        }
        lab.stop()
    }

    static func lease(_ leases: [[String: Any]], address: String) -> [String: Any]? {
        leases.first { $0["address"] as? String == address }
    }

    /// Polls the server's leases until `check` holds (a liveness bound, not a timing assertion).
    static func waitForLease(_ lab: DHCPLab, address: String, timeout: Duration = .seconds(30), _ check: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        var last: [String: Any]?
        while ContinuousClock.now < deadline {
            last = lease(try await lab.leases(), address: address)
            if let last, check(last) { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw AnvilServerError("lease \(address) never matched; last seen: \(String(describing: last))")
    }

    /// dnsmasq in the foreground with DNS off and only `arguments` for DHCP; its log is `dnsmasq-<name>.log`.
    static func dnsmasq(in namespace: NetworkNamespace, lab: DHCPLab, name: String, _ arguments: [String]) throws -> ChildProcess {
        let log = lab.directory.file("dnsmasq-\(name).log")
        return try ChildProcess.spawn(
            namespace.wrap(
                [
                    "/usr/sbin/dnsmasq", "--no-daemon", "--port=0", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--user=root",
                    "--pid-file=\(lab.directory.file("dnsmasq-\(name).pid"))", "--log-dhcp",
                ] + arguments), stdout: log, stderr: log)
    }

    @Test("a real client obtains a lease, renews it and releases it", arguments: DHCPClient.allCases)
    func obtainRenewRelease(client: DHCPClient) async throws {
        try await withLab { lab in
            let mac = try await lab.mac(of: lab.clientInterface, in: lab.clients)
            let run = try await client.obtain(on: lab.clientInterface, in: lab.clients, directory: lab.directory)
            defer { run.cleanUp() }
            let bound = try await run.waitForEvent(["bound", "BOUND"])
            let address = try #require(DHCPClient.Run.field("address", of: bound), "no address in \(bound)")
            #expect(address.hasPrefix("10.77.0.1") && address.count == "10.77.0.100".count, "\(address) is outside the range")
            let lease = try await Self.waitForLease(lab, address: address) { $0["state"] as? String == "bound" }
            #expect(lease["mac"] as? String == mac)
            #expect(lease["subnet"] as? String == "lab")

            let renewed = try await client.renew(run)
            #expect(DHCPClient.Run.field("address", of: renewed) == address, "renewal changed the address: \(renewed)")

            try await client.release(run)
            _ = try await Self.waitForLease(lab, address: address) { $0["state"] as? String == "released" }
            #expect(try await lab.counter("anvil_dhcp_received_total{type=\"release\"}") >= 1)
        }
    }

    @Test("a reservation gives its fixed address and hostname; other clients never get that address")
    func reservation() async throws {
        try await withLab { lab in
            let mac = try await lab.mac(of: lab.clientInterface, in: lab.clients)
            // Inside the range on purpose: the range must skip it for everyone else.
            try await lab.cli(["reservations", "create", "--set", "mac=\(mac)", "--set", "address=10.77.0.100", "--set", "subnet=lab", "--set", "hostname=fixed-one"])
            for other in ["02:00:00:00:0a:01", "02:00:00:00:0a:02"] {
                let offers = try await lab.probe(from: lab.clientInterface, in: lab.clients, ["--mac", other])
                #expect(offers.count == 1)
                #expect(!(offers.first ?? "").contains("yiaddr: 10.77.0.100\n"), "a reserved address was offered to \(other)")
            }
            let run = try await DHCPClient.udhcpc.obtain(on: lab.clientInterface, in: lab.clients, directory: lab.directory)
            defer { run.cleanUp() }
            let bound = try await run.waitForEvent(["bound"])
            #expect(DHCPClient.Run.field("address", of: bound) == "10.77.0.100")
            let offers = try await lab.probe(from: lab.clientInterface, in: lab.clients, ["--mac", mac])
            #expect(offers.first?.contains("hostname(12): \"fixed-one\"") == true, "\(offers)")
        }
    }

    @Test("PXE, UEFI, HTTP Boot and iPXE clients get their loader or script; plain clients get none")
    func bootAnswers() async throws {
        try await withLab { lab in
            let cases: [(arguments: [String], expected: [String], absent: [String])] = [
                (["--arch", "0", "--vendor-class", "PXEClient:Arch:00000:UNDI:002001"], ["file: \"undionly.kpxe\"", "siaddr: 10.77.0.1"], []),
                (["--arch", "7", "--vendor-class", "PXEClient:Arch:00007:UNDI:003016"], ["file: \"ipxe.efi\"", "vendor-class(60): \"PXEClient\""], []),
                (["--arch", "16", "--vendor-class", "HTTPClient:Arch:00016:UNDI:003001"], ["bootfile(67): \"http://10.77.0.1:8080/files/ipxe.efi\"", "vendor-class(60): \"HTTPClient\""], []),
                (["--mac", "02:00:00:00:0b:01", "--arch", "0", "--user-class", "iPXE", "--vendor-class", "PXEClient:Arch:00000:UNDI:002001"],
                    ["http://10.77.0.1:8080/boot/02-00-00-00-0b-01.ipxe"], ["undionly.kpxe"]),
                ([], [], ["bootfile(67)", "file: \"u", "file: \"i"]),
            ]
            for testCase in cases {
                let replies = try await lab.probe(from: lab.clientInterface, in: lab.clients, testCase.arguments)
                #expect(replies.count == 1, "\(testCase.arguments): \(replies)")
                let reply = replies.first ?? ""
                for text in testCase.expected { #expect(reply.contains(text), "\(testCase.arguments): no \(text) in\n\(reply)") }
                for text in testCase.absent { #expect(!reply.contains(text), "\(testCase.arguments): \(text) in\n\(reply)") }
            }
            // A known machine that boots from its disk gets no loader from the firmware's request.
            try await lab.cli([
                "machines", "create", "--set", "name=local-one", "--set", "bootEnv=local",
                "--set", "interfaces=[{\"mac\":\"02:00:00:00:0b:02\",\"boot\":true}]",
            ])
            // The DHCP server learns of the new machine from the event log, moments after the commit.
            var local: [String] = []
            for _ in 0..<5 {
                local = try await lab.probe(from: lab.clientInterface, in: lab.clients, ["--mac", "02:00:00:00:0b:02", "--arch", "0", "--vendor-class", "PXEClient:Arch:00000"])
                if local.count == 1, !(local.first ?? "").contains("undionly") { break }
            }
            #expect(local.count == 1 && !(local.first ?? "").contains("undionly"), "\(local)")
            // Fetching its script notes `fileServed` in its history; the DHCP server still knows the machine.
            let script = try await lab.server.run(["curl", "--silent", "--max-time", "30", "http://127.0.0.1:8080/boot/02-00-00-00-0b-02.ipxe"])
            #expect(script.stdout.contains("local-one"), "\(script.stdout)")
            let served = try await lab.cli(["machines", "history", "local-one", "--action", "fileServed"]).stdout
            #expect(served.contains("boot/02-00-00-00-0b-02.ipxe"), "\(served)")
            let afterServed = try await lab.probe(
                from: lab.clientInterface, in: lab.clients, ["--mac", "02:00:00:00:0b:02", "--arch", "0", "--vendor-class", "PXEClient:Arch:00000"])
            #expect(afterServed.count == 1 && !(afterServed.first ?? "").contains("undionly"), "a note made the machine unknown: \(afterServed)")

            // Every answer is on record for the machine: what it asked, what it got, why.
            let recorded = try await lab.cli(["machines", "boot-decisions", "local-one", "--json"]).stdout
            let answer = try JSONSerialization.jsonObject(with: Data(recorded.utf8)) as? [String: Any]
            let decision = (answer?["decisions"] as? [[String: Any]])?.first
            #expect(decision?["answer"] as? String == "none", "\(recorded)")
            #expect((decision?["reason"] as? String)?.contains("local disk") == true, "\(recorded)")
            #expect(decision?["architecture"] as? String == "x86-bios")
            let shown = try await lab.cli(["machines", "show", "local-one"]).stdout
            #expect(shown.contains("boot decisions (latest first):") && shown.contains("boots from local disk"), "\(shown)")
        }
    }

    @Test("leases survive kill -9: after a restart the holder keeps its address and nobody else gets it")
    func leasesSurviveRestart() async throws {
        try await withLab { lab in
            let run = try await DHCPClient.udhcpc.obtain(on: lab.clientInterface, in: lab.clients, directory: lab.directory)
            defer { run.cleanUp() }
            let address = try #require(DHCPClient.Run.field("address", of: try await run.waitForEvent(["bound"])))
            _ = try await Self.waitForLease(lab, address: address) { $0["state"] as? String == "bound" }

            lab.anvil.kill9()
            try await lab.startAnvil()
            let stored = try #require(Self.lease(try await lab.leases(), address: address), "lease \(address) lost in the restart")
            #expect(stored["state"] as? String == "bound")
            for other in ["02:00:00:00:0c:01", "02:00:00:00:0c:02", "02:00:00:00:0c:03"] {
                let offers = try await lab.probe(from: lab.clientInterface, in: lab.clients, ["--mac", other], wait: 2)
                #expect(offers.count == 1)
                #expect(!(offers.first ?? "").contains("yiaddr: \(address)\n"), "\(address) was offered to \(other) after the restart")
            }
            let renewed = try await DHCPClient.udhcpc.renew(run)
            #expect(DHCPClient.Run.field("address", of: renewed) == address)
        }
    }

    @Test("relayed requests are served from the relay's subnet, and only from configured relay addresses")
    func relayed() async throws {
        let remote = try await NetworkNamespace.create()
        let relay = try await NetworkNamespace.create()
        defer {
            remote.delete()
            relay.delete()
        }
        // Relayed requests arrive on srv1: Anvil must serve that interface too.
        try await withLab(arguments: ["--dhcp-interface", "srv1"], prepare: { lab in
            // server srv1 10.77.1.1 <-> relay r0 10.77.1.2 | relay r1 10.88.0.1 <-> remote client rc0
            try await lab.server.run(["ip", "link", "add", "srv1", "type", "veth", "peer", "name", "r0", "netns", relay.name])
            try await lab.server.run(["ip", "addr", "add", "10.77.1.1/24", "dev", "srv1"])
            try await lab.server.run(["ip", "link", "set", "srv1", "up"])
            try await lab.server.run(["ip", "route", "add", "10.88.0.0/24", "via", "10.77.1.2"])
            try await relay.run(["ip", "addr", "add", "10.77.1.2/24", "dev", "r0"])
            try await relay.run(["ip", "link", "set", "r0", "up"])
            try await relay.run(["ip", "link", "add", "r1", "type", "veth", "peer", "name", "rc0", "netns", remote.name])
            try await relay.run(["ip", "addr", "add", "10.88.0.1/24", "dev", "r1"])
            try await relay.run(["ip", "link", "set", "r1", "up"])
            try await remote.run(["ip", "link", "set", "rc0", "up"])
        }) { lab in
            let dnsmasq = try Self.dnsmasq(in: relay, lab: lab, name: "relay", ["--dhcp-relay=10.88.0.1,10.77.1.1", "--interface=r1"])
            defer { dnsmasq.killAndWait() }
            try await lab.cli(["subnets", "create", "--set", "name=remote", "--set", "network=10.88.0.0/24", "--set", "rangeStart=10.88.0.100", "--set", "rangeEnd=10.88.0.199"])
            let refusedBefore = try await lab.counter("anvil_dhcp_dropped_total{reason=\"relay_not_allowed\"}")
            let unanswered = try await lab.probe(from: "rc0", in: remote, [], wait: 3)
            #expect(unanswered.isEmpty, "served through a relay that is not configured: \(unanswered)")
            #expect(try await lab.counter("anvil_dhcp_dropped_total{reason=\"relay_not_allowed\"}") > refusedBefore)

            try await lab.cli(["subnets", "update", "remote", "--set", "relayAddresses=[\"10.88.0.1\"]"])
            let run = try await DHCPClient.udhcpc.obtain(on: "rc0", in: remote, directory: lab.directory)
            defer { run.cleanUp() }
            let address = try #require(DHCPClient.Run.field("address", of: try await run.waitForEvent(["bound"])))
            #expect(address.hasPrefix("10.88.0."), "relayed client got \(address)")
            let lease = try await Self.waitForLease(lab, address: address) { $0["state"] as? String == "bound" }
            #expect(lease["subnet"] as? String == "remote")
        }
    }

    @Test("proxy mode beside dnsmasq: PXE clients get boot information from Anvil and addresses only from dnsmasq")
    func proxyBesideDnsmasq() async throws {
        let addressServer = try await NetworkNamespace.create()
        defer { addressServer.delete() }
        try await withLab(subnet: nil, prepare: { lab in
            // One link: a bridge in the clients namespace joins Anvil, dnsmasq and the client port e1.
            try await lab.clients.run(["ip", "link", "add", "br0", "type", "bridge"])
            try await lab.clients.run(["ip", "link", "set", lab.clientInterface, "master", "br0"])
            try await lab.clients.run(["ip", "link", "add", "d1", "type", "veth", "peer", "name", "d0", "netns", addressServer.name])
            try await lab.clients.run(["ip", "link", "set", "d1", "master", "br0"])
            try await lab.clients.run(["ip", "link", "add", "e0", "type", "veth", "peer", "name", "e1"])
            try await lab.clients.run(["ip", "link", "set", "e0", "master", "br0"])
            for link in ["br0", "d1", "e0", "e1"] { try await lab.clients.run(["ip", "link", "set", link, "up"]) }
            try await addressServer.run(["ip", "addr", "add", "10.77.0.2/24", "dev", "d0"])
            try await addressServer.run(["ip", "link", "set", "d0", "up"])
        }) { lab in
            let log = lab.directory.file("dnsmasq-address.log")
            let dnsmasq = try Self.dnsmasq(
                in: addressServer, lab: lab, name: "address",
                [
                    "--dhcp-leasefile=\(lab.directory.file("dnsmasq.leases"))", "--interface=d0", "--dhcp-range=10.77.0.150,10.77.0.160,10m",
                    // No ICMP check of an address before offering it: that delays dnsmasq's first offers by seconds.
                    "--no-ping",
                ])
            defer { dnsmasq.killAndWait() }
            try await lab.cli(["subnets", "create", "--set", "name=lab", "--set", "mode=proxy", "--set", "network=10.77.0.0/24"])
            let pxe = ["--arch", "0", "--vendor-class", "PXEClient:Arch:00000:UNDI:002001"]
            // Both answer a PXE client: dnsmasq with an address, Anvil with the loader and no address.
            var replies: [String] = []
            for _ in 0..<5 where replies.count < 2 { replies = try await lab.probe(from: "e1", in: lab.clients, pxe, wait: 3) }
            let fromAnvil = replies.filter { $0.contains("server-id(54): 10.77.0.1\n") }
            let fromDnsmasq = replies.filter { $0.contains("server-id(54): 10.77.0.2\n") }
            #expect(fromAnvil.count == 1 && fromDnsmasq.count == 1, "\(replies)\ndnsmasq:\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            let proxyOffer = fromAnvil.first ?? ""
            #expect(proxyOffer.contains("yiaddr: 0.0.0.0\n"), "proxy offered an address:\n\(proxyOffer)")
            #expect(proxyOffer.contains("file: \"undionly.kpxe\""))
            #expect(proxyOffer.contains("vendor-class(60): \"PXEClient\""))
            #expect(fromDnsmasq.first?.contains("yiaddr: 10.77.0.15") == true || fromDnsmasq.first?.contains("yiaddr: 10.77.0.160") == true)

            // A client that does not network-boot hears only dnsmasq, and gets its address from it.
            let plain = try await lab.probe(from: "e1", in: lab.clients, [], wait: 3)
            #expect(!plain.contains { $0.contains("server-id(54): 10.77.0.1\n") }, "proxy answered a plain client: \(plain)")
            let run = try await DHCPClient.udhcpc.obtain(on: "e1", in: lab.clients, directory: lab.directory)
            defer { run.cleanUp() }
            let bound = try await run.waitForEvent(["bound"])
            #expect(DHCPClient.Run.field("server", of: bound) == "10.77.0.2", "\(bound)")
            #expect(try await lab.leases().isEmpty, "a proxy subnet must hold no leases")

            // With an address, a PXE client can ask Anvil's boot-server port directly.
            let bootServer = try await lab.probe(from: "e1", in: lab.clients, pxe + ["--boot-server", "10.77.0.1"], wait: 3)
            #expect(bootServer.count == 1 && bootServer.first?.contains("message-type(53): ack") == true, "\(bootServer)")
            #expect(bootServer.first?.contains("file: \"undionly.kpxe\"") == true)
        }
    }

    @Test("malformed datagrams are dropped and counted by reason, and the next client is served")
    func malformed() async throws {
        try await withLab { lab in
            var discover = DHCPMessage(operation: .request, transactionID: 0x1234)
            discover.clientMAC = .init(0x02, 0, 0, 0, 0x0d, 1)
            discover.options.set(messageType: .discover)
            let valid = Array(discover.encoded.readableBytesView)
            var badCookie = valid
            badCookie[236] = 0
            let overrun = Array(valid[0..<240]) + [53, 1, 1, 12, 200, 65, 65]
            var reply = valid
            reply[0] = 2
            let junk: [(name: String, bytes: [UInt8], reason: String)] = [
                ("short", Array(valid[0..<100]), "truncated"), ("cookie", badCookie, "bad_cookie"), ("overrun", overrun, "option_overrun"),
                ("reply", reply, "not_request"), ("empty", [], "truncated"),
            ]
            try await lab.clients.run(["ip", "addr", "add", "10.77.0.9/24", "dev", lab.clientInterface])
            for packet in junk {
                let file = lab.directory.file("junk-\(packet.name)")
                try Data(packet.bytes).write(to: URL(fileURLWithPath: file))
                try await lab.clients.run(["bash", "-c", "cat \(file) > /dev/udp/10.77.0.1/67"])
            }
            let deadline = ContinuousClock.now + .seconds(30)
            var counts: [String: Double] = [:]
            while ContinuousClock.now < deadline {
                for packet in junk { counts[packet.reason] = try await lab.counter("anvil_dhcp_dropped_total{reason=\"\(packet.reason)\"}") }
                if counts["truncated"]! >= 1, counts["bad_cookie"]! >= 1, counts["option_overrun"]! >= 1, counts["not_request"]! >= 1 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            for packet in junk { #expect(counts[packet.reason, default: 0] >= 1, "\(packet.name) not counted as \(packet.reason): \(counts)") }
            try await lab.clients.run(["ip", "-4", "addr", "flush", "dev", lab.clientInterface])
            let run = try await DHCPClient.udhcpc.obtain(on: lab.clientInterface, in: lab.clients, directory: lab.directory)
            defer { run.cleanUp() }
            _ = try await run.waitForEvent(["bound"])
        }
    }

    @Test("an exhausted pool makes no offer and counts it; reserved machines are still served")
    func exhaustion() async throws {
        try await withLab(subnet: nil) { lab in
            try await lab.cli(["subnets", "create", "--set", "name=lab", "--set", "network=10.77.0.0/24", "--set", "rangeStart=10.77.0.100", "--set", "rangeEnd=10.77.0.100"])
            try await lab.cli(["reservations", "create", "--set", "mac=02:00:00:00:0e:03", "--set", "address=10.77.0.60", "--set", "subnet=lab"])
            let first = try await lab.probe(from: lab.clientInterface, in: lab.clients, ["--mac", "02:00:00:00:0e:01"], wait: 2)
            #expect(first.first?.contains("yiaddr: 10.77.0.100\n") == true, "\(first)")
            // The only address is held for the first client's REQUEST: nothing is left.
            let second = try await lab.probe(from: lab.clientInterface, in: lab.clients, ["--mac", "02:00:00:00:0e:02"], wait: 2)
            #expect(second.isEmpty, "offered from an exhausted pool: \(second)")
            #expect(try await lab.counter("anvil_dhcp_pool_exhausted_total{subnet=\"lab\"}") >= 1)
            let reserved = try await lab.probe(from: lab.clientInterface, in: lab.clients, ["--mac", "02:00:00:00:0e:03"], wait: 2)
            #expect(reserved.first?.contains("yiaddr: 10.77.0.60\n") == true, "\(reserved)")
            // The pool's size and use are published with each reclaim pass (every 10 s).
            var held = 0.0
            for _ in 0..<60 where held < 1 {
                held = try await lab.counter("anvil_dhcp_pool_addresses{subnet=\"lab\",state=\"held\"}")
                if held < 1 { try await Task.sleep(for: .milliseconds(500)) }
            }
            let poolLines = try await lab.metrics().split(separator: "\n").filter { $0.contains("pool") }
            #expect(held >= 1, "no pool usage gauge: \(poolLines)")
            #expect(try await lab.counter("anvil_dhcp_pool_addresses{subnet=\"lab\",state=\"total\"}") == 1)
        }
    }
}
