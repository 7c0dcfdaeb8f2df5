import Foundation
import Glibc
import ProxyProtocol
import Synchronization
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// A UDP server for tests: answers each datagram with "NAME PEER PAYLOAD", on a thread of its own.
final class UDPTestServer: @unchecked Sendable {
    let fd: Int32
    let endpoint: IPEndpoint
    let name: String
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(name: String, on ip: IPAddress = loopback) throws {
        self.name = name
        fd = try Socket.datagram(on: IPEndpoint(ip: ip, port: 0))
        endpoint = Socket.localEndpoint(fd)!
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !stopping.load(ordering: .acquiring) {
                var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard Glibc.poll(&poll, 1, 50) == 1, let (count, peer) = Socket.receiveDatagram(fd, into: &buffer)
                else { continue }
                Socket.sendDatagram(fd, Array("\(name) \(peer) ".utf8) + buffer[0..<count], to: peer)
            }
            done.signal()
        }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        done.wait()
        closeDescriptor(fd)
    }
}

/// UDP listeners (docs/flows.md §10) over real loopback sockets.
@Suite struct UDPListeners {
    func udpConfiguration(targets: [IPEndpoint]) -> Configuration {
        var config = configuration(targets: targets)
        config.listeners[0].protocolName = .udp
        config.targetGroups[0].protocolName = .udp
        config.targetGroups[0].preserveClientIP = true
        return config
    }

    /// One datagram from `client` to `endpoint` and its answer: the payload and who sent it.
    func exchange(_ client: Int32, _ payload: String, with endpoint: IPEndpoint) throws -> (String, IPEndpoint) {
        Socket.sendDatagram(client, Array(payload.utf8), to: endpoint)
        var poll = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, 3000) == 1 else { throw TestFailure("no answer to \(payload)") }
        var buffer = [UInt8](repeating: 0, count: 65536)
        guard let (count, from) = Socket.receiveDatagram(client, into: &buffer) else { throw TestFailure("recv") }
        return (String(decoding: buffer[0..<count], as: UTF8.self), from)
    }

    @Test func aFlowKeepsItsTargetSeesTheClientAndIsAnsweredFromTheListener() throws {
        let a = try UDPTestServer(name: "a")
        let b = try UDPTestServer(name: "b")
        defer {
            a.stop()
            b.stop()
        }
        let lb = try RunningBalancer(udpConfiguration(targets: [a.endpoint, b.endpoint]))
        defer { lb.stop() }
        let listener = lb.balancer.udpListenerEndpoints[0].endpoint
        var seen: Set<String> = []
        for _ in 0..<16 {
            let client = try Socket.datagram(on: IPEndpoint(ip: otherLoopback, port: 0))
            defer { closeDescriptor(client) }
            let (first, from) = try exchange(client, "hello", with: listener)
            let parts = first.split(separator: " ")
            #expect(from == listener)  // the answer comes from the listener's address and port
            #expect(parts.count == 3 && parts[1].hasPrefix("127.0.0.2:") && parts[2] == "hello")
            for round in 0..<3 {  // every datagram of the flow goes to the same target
                let (again, _) = try exchange(client, "again\(round)", with: listener)
                #expect(again.split(separator: " ").first == parts.first)
            }
            seen.insert(String(parts[0]))
        }
        #expect(seen == ["a", "b"])  // flows spread over both targets
        // A datagram of 60 000 bytes arrives whole.
        let client = try Socket.datagram(on: IPEndpoint(ip: otherLoopback, port: 0))
        defer { closeDescriptor(client) }
        let big = String(repeating: "x", count: 60_000)
        let (answer, _) = try exchange(client, big, with: listener)
        #expect(answer.hasSuffix(" " + big))
    }

    @Test func ipv6DatagramsPassToo() throws {
        let a = try UDPTestServer(name: "a", on: loopback6)
        defer { a.stop() }
        var config = udpConfiguration(targets: [a.endpoint])
        config.loadBalancers[0].nodes = [LoadBalancerNode(subnetID: "subnet-test", ipv4: nil, ipv6: loopback6)]
        let lb = try RunningBalancer(config)
        defer { lb.stop() }
        let listener = lb.balancer.udpListenerEndpoints[0].endpoint
        #expect(listener.ip == loopback6)
        let client = try Socket.datagram(on: IPEndpoint(ip: loopback6, port: 0))
        defer { closeDescriptor(client) }
        let (answer, from) = try exchange(client, "six", with: listener)
        #expect(from == listener && answer.hasPrefix("a [::1]:") && answer.hasSuffix(" six"))
    }

    @Test func aFlowIdlesOutAfter120ScaledSeconds() throws {
        let a = try UDPTestServer(name: "a")
        defer { a.stop() }
        // 120 s × 0.01 = 1.2 s.
        let lb = try RunningBalancer(udpConfiguration(targets: [a.endpoint]), timeScale: 0.01)
        defer { lb.stop() }
        let client = try Socket.datagram(on: IPEndpoint(ip: otherLoopback, port: 0))
        defer { closeDescriptor(client) }
        _ = try exchange(client, "hello", with: lb.balancer.udpListenerEndpoints[0].endpoint)
        let ended = try lb.endedFlows(count: 1, within: 5)
        #expect(ended[0].closeReason == .idleTimeout && ended[0].transport == .udp)
        #expect(ended[0].bytesFromClient == 5 && ended[0].client.ip == otherLoopback)
    }

    @Test func aDeadTargetCostsItsFlowOnly() throws {
        let dead = try UDPTestServer(name: "dead")
        let deadEndpoint = dead.endpoint
        dead.stop()  // its port now answers ICMP port unreachable
        let lb = try RunningBalancer(udpConfiguration(targets: [deadEndpoint]))
        defer { lb.stop() }
        let client = try Socket.datagram(on: IPEndpoint(ip: otherLoopback, port: 0))
        defer { closeDescriptor(client) }
        let listener = lb.balancer.udpListenerEndpoints[0].endpoint
        Socket.sendDatagram(client, Array("one".utf8), to: listener)
        Socket.sendDatagram(client, Array("two".utf8), to: listener)
        let ended = try lb.endedFlows(count: 1, within: 5)
        #expect(ended[0].closeReason == .connectRefused)
    }

    /// A flood of distinct flows past the bound: the flows within it keep working, the rest are
    /// dropped and the log says so; the daemon carries on.
    @Test func aFloodPastTheBoundLosesNothingOfTheLiveFlows() throws {
        let a = try UDPTestServer(name: "a")
        defer { a.stop() }
        let lb = try RunningBalancer(udpConfiguration(targets: [a.endpoint]), eventLoops: 1, udpFlowLimit: 20)
        defer { lb.stop() }
        let listener = lb.balancer.udpListenerEndpoints[0].endpoint
        let clients = try (0..<30).map { _ in try Socket.datagram(on: IPEndpoint(ip: otherLoopback, port: 0)) }
        defer { clients.forEach(closeDescriptor) }
        var answered = 0
        for client in clients {
            Socket.sendDatagram(client, Array("hello".utf8), to: listener)
            var poll = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            if Glibc.poll(&poll, 1, 300) == 1 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                if Socket.receiveDatagram(client, into: &buffer) != nil { answered += 1 }
            }
        }
        #expect(answered == 20)
        for client in clients.prefix(20) {  // every live flow still carries datagrams
            let (again, _) = try exchange(client, "again", with: listener)
            #expect(again.hasSuffix(" again"))
        }
        #expect(lb.logLines.contains { $0.contains("UDP: 20 flows on event loop 0, the most one loop keeps") })
    }

    @Test func theFileRulesForUDP() {
        let json = """
            { "LoadBalancer": { "Name": "u", "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ] },
              "Listeners": [ { "Port": 53, "Protocol": "UDP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "dns" } ] } ],
              "TargetGroups": [ { "Name": "dns", "Port": 53, "Protocol": "UDP", "TargetType": "ip",
                "TargetGroupAttributes": [ { "Key": "preserve_client_ip.enabled", "Value": "false" } ] } ] }
            """
        #expect(
            problems(json) == [
                #"TargetGroups[0].TargetGroupAttributes["preserve_client_ip.enabled"]: false: a UDP target group always "#
                    + "preserves the client's address (AWS allows no other)"
            ])
        let tcpGroup = json.replacingOccurrences(
            of: #""Protocol": "UDP", "TargetType""#, with: #""Protocol": "TCP", "TargetType""#
        )
        .replacingOccurrences(of: #"{ "Key": "preserve_client_ip.enabled", "Value": "false" }"#, with: "")
        #expect(
            problems(tcpGroup) == [
                "Listeners[0].DefaultActions[0]: a UDP listener forwards to a UDP or TCP_UDP target group; dns is TCP"
            ])
        let udpCheck = json.replacingOccurrences(
            of: #""TargetType": "ip","#, with: #""TargetType": "ip", "HealthCheckProtocol": "UDP","#
        ).replacingOccurrences(of: #"{ "Key": "preserve_client_ip.enabled", "Value": "false" }"#, with: "")
        #expect(problems(udpCheck).first?.contains("never UDP") == true)
    }
}
