import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// Availability Zones: the file's `Subnets`, zone-aware fail-open and picking, and, end to end, where
/// flows land with cross-zone load balancing off and on.
@Suite struct Zones {
    static let zoneA = IPAddress.v4(IPv4Address(127, 0, 1, 1))
    static let zoneB = IPAddress.v4(IPv4Address(127, 0, 2, 1))
    static let subnets = [
        SubnetConfiguration(subnetID: "subnet-a", availabilityZone: "us-east-1a", cidr: CIDR("127.0.1.0/24")),
        SubnetConfiguration(subnetID: "subnet-b", availabilityZone: "us-east-1b", cidr: CIDR("127.0.2.0/24")),
        SubnetConfiguration(subnetID: "subnet-c", availabilityZone: "us-east-1c", cidr: CIDR("127.0.3.0/24")),
    ]

    /// Two zones, a target in each: with cross-zone off, each zone fails open on its own, and a target
    /// in a zone without a node takes nothing.
    @Test func failOpenIsJudgedPerZone() {
        var l = TargetLifecycle(
            configuration: TargetGroupConfiguration(name: "tg", port: 80, targetType: .ip, targets: []), timeScale: 1)
        for (port, zone) in [(9001, "us-east-1a"), (9002, "us-east-1b"), (9003, "us-east-1c")] {
            let index = l.register(id: "t", endpoint: IPEndpoint("127.0.0.1:\(port)")!, now: 0)
            l.targets[index].zone = zone
        }
        l.crossZone = false
        l.enabledZones = ["us-east-1a", "us-east-1b"]
        for _ in 0..<5 { _ = l.recordCheck(0, registration: l.targets[0].registration, passed: true, now: 0) }
        for _ in 0..<2 { _ = l.recordCheck(1, registration: l.targets[1].registration, passed: false, now: 0) }
        #expect(l.targets.map(\.state) == [.healthy, .unhealthy, .initial])
        #expect(l.failingOpenZones == ["us-east-1b"])
        #expect(l.targets.map(\.takesNewFlows) == [true, true, false])  // b fails open in its zone; c has no node
        let key = FlowKey(client: IPEndpoint("127.0.0.9:4000")!, node: IPEndpoint("127.0.1.1:80")!)
        let selector = TargetSelector()
        for _ in 0..<4 {
            #expect(selector.pick(from: l.targets, for: key, using: .roundRobin, zone: "us-east-1a") == 0)
        }
        l.crossZone = true
        l.refreshRouting()
        #expect(l.failingOpenZones.isEmpty && l.targets.map(\.takesNewFlows) == [true, false, false])
    }

    @Test func theFileNamesZoneProblems() {
        let json = """
            { "Subnets": [
                { "SubnetId": "subnet-a", "AvailabilityZone": "us-east-1a", "CidrBlock": "127.0.1.0/24" },
                { "SubnetId": "subnet-b", "AvailabilityZone": "us-east-1b", "CidrBlock": "127.0.2.0/24" } ],
              "LoadBalancer": { "Name": "z", "SubnetMappings": [
                { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.1.1" },
                { "SubnetId": "subnet-b", "PrivateIPv4Address": "127.0.2.1" } ] },
              "Listeners": [ { "Port": 80, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
              "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "ip",
                "Targets": [ { "Id": "127.0.1.10" }, { "Id": "127.0.0.1", "AvailabilityZone": "all" } ] } ] }
            """
        #expect(problems(json).isEmpty)
        #expect(
            problems(json.replacingOccurrences(of: #", "AvailabilityZone": "all""#, with: "")) == [
                "TargetGroups[0].Targets[1]: 127.0.0.1 is in none of the Subnets' CIDR blocks: give it "
                    + "AvailabilityZone (one of us-east-1a, us-east-1b), or all as AWS requires for an address "
                    + "outside the VPC"
            ])
        #expect(
            problems(
                json.replacingOccurrences(
                    of: #""PrivateIPv4Address": "127.0.2.1""#, with: #""PrivateIPv4Address": "127.0.1.2""#))
                == ["LoadBalancers[0].SubnetMappings[1]: 127.0.1.2 is not in subnet-b's CIDR block"])
        #expect(
            problems(
                json.replacingOccurrences(of: #""CidrBlock": "127.0.2.0/24""#, with: #""CidrBlock": "127.0.1.128/25""#)
            )
            .first == "Subnets[1]: 127.0.1.128/25 overlaps subnet-a's 127.0.1.0/24")
    }

    /// Each node's flows go to its own zone's target while cross-zone load balancing is off (NLB's
    /// default), and to both zones' targets once the load balancer turns it on.
    @Test func crossZoneOffKeepsFlowsInTheNodesZone() throws {
        let serverA = try TestServer(on: .v4(IPv4Address(127, 0, 1, 10)))
        let serverB = try TestServer(on: .v4(IPv4Address(127, 0, 2, 10)))
        for crossZone in [false, true] {
            var config = configuration(
                targets: [serverA.endpoint, serverB.endpoint],
                nodes: [
                    LoadBalancerNode(subnetID: "subnet-a", ipv4: Self.zoneA),
                    LoadBalancerNode(subnetID: "subnet-b", ipv4: Self.zoneB),
                ])
            config.subnets = Self.subnets
            config.loadBalancers[0].attributes.crossZone = crossZone
            let lb = try RunningBalancer(config)
            defer { lb.stop() }
            let nodeA = lb.balancer.listenerEndpoints.first { $0.endpoint.ip == Self.zoneA }!.endpoint
            var held: [TestSocket] = []
            var reachedB = 0
            for _ in 0..<4 {
                let client = try TestSocket.connect(to: nodeA)
                try client.send("x")
                held.append(client)
                if serverB.hasPendingConnection(within: 0.2) {
                    held.append(try serverB.accept())
                    reachedB += 1
                } else {
                    held.append(try serverA.accept())
                }
            }
            // Off: zone a's node reaches zone a's target only. On: least connections spreads over both.
            #expect(reachedB == (crossZone ? 2 : 0), "cross-zone \(crossZone)")
            for socket in held { socket.close() }
        }
    }

    /// A weighted forward (docs/target-groups.md §3): the group at weight 0 takes no flows, so its targets
    /// failing their checks keep no zone out of DNS; the zone is healthy once the weighted group is.
    @Test func aGroupAtWeightZeroKeepsNoZoneOutOfDNS() throws {
        // Ports nothing listens on yet: blue's target refuses every check; green's comes up later.
        func freePort(_ ip: IPAddress) throws -> UInt16 {
            let fd = try Socket.listen(on: IPEndpoint(ip: ip, port: 0))
            defer { closeDescriptor(fd) }
            return Socket.localEndpoint(fd)!.port
        }
        let loopback = IPAddress.v4(IPv4Address(127, 0, 0, 1))
        let (bluePort, greenPort, listenerPort) = (
            try freePort(loopback), try freePort(loopback), try freePort(Self.zoneA)
        )
        let json = """
            { "LoadBalancer": { "Name": "w", "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.1.1" } ] },
              "Subnets": [ { "SubnetId": "subnet-a", "AvailabilityZone": "us-east-1a", "CidrBlock": "127.0.1.0/24" } ],
              "Listeners": [ { "Port": \(listenerPort), "DefaultActions": [ { "Type": "forward", "ForwardConfig": { "TargetGroups": [
                { "TargetGroupName": "blue", "Weight": 0 }, { "TargetGroupName": "green", "Weight": 1 } ] } } ] } ],
              "TargetGroups": [
                { "Name": "blue", "Port": \(bluePort), "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1", "AvailabilityZone": "all" } ] },
                { "Name": "green", "Port": \(greenPort), "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1", "AvailabilityZone": "all" } ] } ] }
            """
        let lb = try RunningBalancer(try load(json).configuration, timeScale: 0.02)
        defer { lb.stop() }
        Thread.sleep(forTimeInterval: 0.5)
        // Green comes up (a listening socket passes a TCP check); blue stays down.
        let greenUp = try Socket.listen(on: IPEndpoint(ip: loopback, port: greenPort))
        defer { closeDescriptor(greenUp) }
        var healthy = false
        for _ in 0..<200 where !healthy {
            Thread.sleep(forTimeInterval: 0.05)
            healthy = lb.logLines.contains { $0.contains("load balancer w: zone us-east-1a healthy") }
        }
        #expect(healthy, "\(lb.logLines.filter { $0.contains("zone") || $0.contains("→") })")
    }

    /// Health checks take turns from each node's address: the target sees every node probing it.
    @Test func everyNodeProbesTheTarget() throws {
        let server = try TestServer(on: .v4(IPv4Address(127, 0, 1, 10)))
        var config = configuration(
            targets: [server.endpoint],
            nodes: [
                LoadBalancerNode(subnetID: "subnet-a", ipv4: Self.zoneA),
                LoadBalancerNode(subnetID: "subnet-b", ipv4: Self.zoneB),
            ])
        config.subnets = Self.subnets
        config.targetGroups[0].healthCheck.enabled = true
        let lb = try RunningBalancer(config, timeScale: 0.01)  // a check every 0.3 s
        defer { lb.stop() }
        var sources = Set<IPAddress>()
        for _ in 0..<4 {
            let probe = try server.accept(within: 3)
            if let peer = probe.peer { sources.insert(peer.ip) }
            probe.close()
        }
        #expect(sources == [Self.zoneA, Self.zoneB])
    }
}
