import CLocalNLB
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// A DNS client on TCP: two-byte length, message; answered in turn, closed at EOF or after 10 s.
package final class DNSConnection {
    package var input: [UInt8] = []
    package var output: [UInt8] = []
    package var written = 0
    package var deadline: UInt64

    package init(deadline: UInt64) { self.deadline = deadline }
}

/// The load balancers' DNS names, answered from their nodes in healthy zones not shifted away from (an
/// Availability Zone with no healthy target leaves DNS; with none healthy, DNS fails open to every
/// node). UDP and TCP on `Dns.Address`, on the control plane's thread, never blocking it.
extension ControlPlane {
    static let dnsTTL: UInt32 = 60
    static let dnsConnectionLimit = 64

    func openDNS() throws {
        guard let dns = configuration.dns else { return }
        do {
            try bindDNS(dns.address)
        } catch {
            closeDNS()
            let problem = "DNS responder \(dns.address): \(Self.explain(error))"
            guard !dns.explicit else { throw ListenerError(description: problem + "; set Dns.Address to another port") }
            // The default address taken (another localnlb?) is no reason not to run, nor to go without
            // DNS: the responder takes a free port of the same address and says which.
            do {
                try bindDNS(IPEndpoint(ip: dns.address.ip, port: 0))
                options.log(
                    "\(problem); answering on \(dnsEndpoint!) instead (Dns.Address or --dns-address chooses)")
            } catch {
                closeDNS()
                options.log("\(problem); DNS is off (set Dns.Address to another port, or Dns.Enabled false)")
            }
        }
    }

    /// The responder's UDP socket and TCP listener on `address` (port 0: a free port, the same for both).
    private func bindDNS(_ address: IPEndpoint) throws {
        dnsUDP = try Socket.datagram(on: address)
        let bound = address.port == 0 ? (Socket.localEndpoint(dnsUDP) ?? address) : address
        dnsTCP = try Socket.listen(on: bound, backlog: 64)
        dnsEndpoint = bound
        try poller.add(dnsUDP, events: CLNB_EPOLLIN, token: token(.dnsDatagram, 0, 0))
        try poller.add(dnsTCP, events: CLNB_EPOLLIN, token: token(.dnsListener, 0, 0))
    }

    func closeDNS() {
        for fd in dnsConnections.keys { closeDescriptor(fd) }
        dnsConnections = [:]
        for fd in [dnsUDP, dnsTCP] where fd >= 0 {
            forgetPausedAccept(fd)
            closeDescriptor(fd)
        }
        (dnsUDP, dnsTCP) = (-1, -1)
    }

    // MARK: UDP and TCP

    func answerDatagrams() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<64 {
            guard let (count, from) = Socket.receiveDatagram(dnsUDP, into: &buffer) else { return }
            if let answer = dnsAnswer(Array(buffer[0..<count]), from: from.ip, udp: true) {
                Socket.sendDatagram(dnsUDP, answer, to: from)
            }
        }
    }

    func acceptDNS() {
        for _ in 0..<16 {
            guard let fd = acceptControlConnection(dnsTCP, kind: .dnsListener, what: "DNS responder (TCP)") else {
                return
            }
            if dnsConnections.count >= Self.dnsConnectionLimit,
                let oldest = dnsConnections.min(by: { $0.value.deadline < $1.value.deadline })?.key
            {
                closeDNSConnection(oldest)
            }
            dnsConnections[fd] = DNSConnection(deadline: now + 10_000_000_000)
            let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
            do {
                try poller.add(fd, events: interest, token: token(.dnsConnection, Int(fd), 0))
            } catch {
                closeDNSConnection(fd)
                continue
            }
            dnsConnectionEvent(fd: fd)
        }
    }

    func dnsConnectionEvent(fd: Int32) {
        guard let connection = dnsConnections[fd] else { return }
        var chunk = [UInt8](repeating: 0, count: 4096)
        var ended = false
        while connection.input.count < 70_000 {
            let received = chunk.withUnsafeMutableBytes { IO.receive(fd, into: $0.baseAddress!, count: $0.count) }
            if case .moved(let n) = received {
                connection.input += chunk[0..<n]
                continue
            }
            ended = received != .wouldBlock
            break
        }
        // Every whole message (two-byte length first) is answered in turn.
        while connection.input.count >= 2 {
            let length = Int(connection.input[0]) << 8 | Int(connection.input[1])
            guard connection.input.count >= 2 + length else { break }
            let message = Array(connection.input[2..<2 + length])
            connection.input.removeFirst(2 + length)
            if let answer = dnsAnswer(
                message, from: Socket.peerEndpoint(fd)?.ip ?? .v4(IPv4Address(0, 0, 0, 0)), udp: false)
            {
                connection.output += [UInt8(answer.count >> 8), UInt8(answer.count & 0xFF)] + answer
            }
        }
        switch Socket.sendPending(fd, connection.output, from: &connection.written) {
        case .complete:
            connection.output.removeAll(keepingCapacity: true)
            connection.written = 0
            if ended || connection.input.count >= 70_000 { closeDNSConnection(fd) }
        case .wouldBlock: break
        case .failed: closeDNSConnection(fd)
        }
    }

    func closeDNSConnection(_ fd: Int32) {
        guard dnsConnections.removeValue(forKey: fd) != nil else { return }
        poller.remove(fd)
        closeDescriptor(fd)
    }

    func expireDNSConnections() {
        for (fd, connection) in dnsConnections where now >= connection.deadline { closeDNSConnection(fd) }
    }

    // MARK: Answers

    /// The answer to one message from `asker`, or nil to drop it (too short, or a response).
    func dnsAnswer(_ message: [UInt8], from asker: IPAddress, udp: Bool) -> [UInt8]? {
        switch DNSMessage.parse(message) {
        case .drop:
            return nil
        case .formatError(let id, let question):
            return DNSMessage.response(id: id, recursionDesired: false, code: .formatError, question: question)
        case .query(let query):
            func reply(_ code: DNSMessage.ResponseCode, _ addresses: [IPAddress] = []) -> [UInt8] {
                DNSMessage.response(
                    id: query.id, recursionDesired: query.recursionDesired, code: code, question: query.question,
                    type: query.type, addresses: addresses.map(\.bytes), ttl: Self.dnsTTL, edns: query.edns,
                    authoritative: code == .noError)
            }
            guard query.isStandardQuery else { return reply(.notImplemented) }
            guard query.class == DNSMessage.classIN,
                let balancer = configuration.loadBalancers.firstIndex(where: {
                    names.dnsName($0.name).lowercased() == query.name
                })
            else { return reply(.refused) }
            dnsQueries &+= 1
            let wanted = query.type == DNSMessage.typeA ? false : query.type == DNSMessage.typeAAAA ? true : nil
            guard let ipv6 = wanted else { return reply(.noError) }  // a name of ours, no record of that type
            return reply(.noError, dnsAddresses(balancer, asker: asker).filter { $0.isIPv6 == ipv6 })
        }
    }

    /// The addresses a load balancer's name resolves to for `asker`: its nodes in healthy zones (every
    /// node when none is), narrowed to the asker's zone by `dns_record.client_routing_policy`.
    func dnsAddresses(_ index: Int, asker: IPAddress) -> [IPAddress] {
        let balancer = configuration.loadBalancers[index]
        let healthy = healthyZones(index)
        let shifted = shiftedZones(balancer.name)
        // A zone shifted away from (ARC) leaves DNS whatever its health.
        let eligible = balancer.nodes.filter { !shifted.contains(configuration.zone(of: $0)) }
        var chosen = eligible.filter { healthy.contains(configuration.zone(of: $0)) }
        if chosen.isEmpty { chosen = eligible.isEmpty ? balancer.nodes : eligible }
        let policy = balancer.attributes.clientRoutingPolicy
        if policy != "any_availability_zone",
            let zone = configuration.subnets.first(where: { $0.contains(asker) })?.availabilityZone
        {
            // Full affinity: always the asker's zone when it is healthy; partial: 85 answers in 100.
            let local = chosen.filter { configuration.zone(of: $0) == zone }
            if !local.isEmpty && (policy == "availability_zone_affinity" || dnsQueries % 20 < 17) { chosen = local }
        }
        return chosen.flatMap(\.addresses)
    }

    /// The zones of a load balancer whose every attached target group is healthy there: at least
    /// `target_group_health.dns_failover.minimum_healthy_targets.count` (and `.percentage`) healthy
    /// targets in the zone with cross-zone off, in any zone with it on. Without groups, every zone.
    func healthyZones(_ index: Int) -> Set<String> {
        let balancer = configuration.loadBalancers[index]
        let zones = configuration.zones(of: balancer)
        // A network listener's weighted forward: the groups that take new flows (weight above 0); a group
        // drained to weight 0 in a blue/green shift does not take its zones out of DNS.
        let attached = Set(
            configuration.listeners.filter { $0.loadBalancerName == balancer.name }.flatMap { listener in
                if !listener.protocolName.isHTTP, case .weightedForward(let weighted, _)? = listener.defaultAction {
                    return weighted.filter { $0.weight > 0 }.map(\.name)
                }
                return [listener.targetGroupName]
            })
        let members = groups.indices.filter { !groups[$0].removed && attached.contains(groups[$0].configuration.name) }
        return zones.filter { zone in members.allSatisfy { isHealthy($0, in: zone) } }
    }

    package func isHealthy(_ group: Int, in zone: String) -> Bool {
        let lifecycle = groups[group].lifecycle
        let settings = groups[group].configuration
        let counted = lifecycle.targets.filter {
            $0.isRegistered && lifecycle.inEnabledZone($0)
                && (lifecycle.crossZone || $0.zone == zone || $0.zone == "all")
        }
        // With health checks off, every registered target counts as healthy.
        let healthy = counted.filter { $0.state == .healthy || !lifecycle.checksEnabled }.count
        if healthy < max(settings.dnsFailoverMinimumHealthyTargetsCount, 1) { return false }
        if let percentage = settings.dnsFailoverMinimumHealthyTargetsPercentage,
            healthy * 100 < percentage * counted.count
        {
            return false
        }
        return true
    }

    /// The event log says when a load balancer's zone turns healthy or unhealthy, and what its name
    /// resolves to then (for an asker in no zone).
    func logZoneHealth() {
        guard configuration.dns != nil || !configuration.subnets.isEmpty else { return }
        for index in configuration.loadBalancers.indices {
            let name = configuration.loadBalancers[index].name
            let zones = healthyZones(index)
            let addresses = dnsAddresses(index, asker: .v4(IPv4Address(0, 0, 0, 0)))
            guard loggedDNS[name]?.zones != zones || loggedDNS[name]?.addresses != addresses else { continue }
            let all = configuration.zones(of: configuration.loadBalancers[index])
            let before = loggedDNS[name]
            loggedDNS[name] = (zones, addresses)
            guard let before else { continue }  // the first look is no change
            for zone in all.subtracting(zones).intersection(before.zones).sorted() {
                options.log("load balancer \(name): zone \(zone) unhealthy")
            }
            for zone in zones.subtracting(before.zones).sorted() {
                options.log("load balancer \(name): zone \(zone) healthy")
            }
            let shown = addresses.map(\.description).joined(separator: " ")
            options.log(
                "load balancer \(name): DNS answers \(shown)" + (zones.isEmpty ? " (no zone healthy: fails open)" : ""))
        }
    }
}
