import Foundation
import Glibc
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// A control API client for tests.
struct API {
    let endpoint: IPEndpoint
    var token: String?

    func call(_ method: String, _ path: String, _ body: String? = nil) throws -> (Int, [String: Any]) {
        let (status, text) = try ControlCommand.send(
            method: method, path: path, body: body, to: endpoint,
            credentials: ClientCredentials(environment: [:], token: token))
        let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? ["text": text]
        return (status, json)
    }

    /// Target "ip:port" → state, from GET /target-groups/tg/health.
    func states(_ group: String = "tg") throws -> [String: String] {
        let (_, json) = try call("GET", "/target-groups/\(group)/health")
        var result: [String: String] = [:]
        for description in json["TargetHealthDescriptions"] as? [[String: Any]] ?? [] {
            let target = description["Target"] as! [String: Any]
            let health = description["TargetHealth"] as! [String: Any]
            result["\(target["Id"]!):\(target["Port"]!)"] = health["State"] as? String
        }
        return result
    }

    /// Polls until `condition` holds on the states (at most `seconds`).
    func waitFor(_ seconds: Double = 5, _ what: String, _ condition: ([String: String]) -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        var last: [String: String] = [:]
        while Date() < deadline {
            last = try states()
            if condition(last) { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw TestFailure("\(what): not within \(seconds) s; states \(last)")
    }
}

extension TestServer {
    /// The next connection from `client` (health checks, from the node, are closed and skipped).
    func acceptFlow(from client: IPAddress, within seconds: Double = 5) throws -> TestSocket {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let socket = try accept(within: max(0.01, deadline.timeIntervalSinceNow))
            if socket.peer?.ip == client { return socket }
        }
        throw TestFailure("no flow from \(client) within \(seconds) s")
    }
}

/// A server answering every request with one HTTP status, keeping each request it received.
final class HTTPStatusServer: @unchecked Sendable {
    let server: TestServer
    let status: Int
    private let lock = NSLock()
    private var requests: [[UInt8]] = []
    private var running = true

    init(status: Int) throws {
        server = try TestServer()
        self.status = status
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                guard let connection = try? server.accept(within: 0.1) else { continue }
                var request: [UInt8] = []
                while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n"),
                    case .data(let bytes) = connection.receive()
                {
                    request += bytes
                }
                lock.withLock { requests.append(request) }
                try? connection.send("HTTP/1.1 \(status) Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                connection.close()
            }
        }
    }

    var received: [[UInt8]] { lock.withLock { requests } }
    func stop() { lock.withLock { running = false } }
}

/// End to end with `--time-scale 0.01`: AWS-default timers in a fraction of a second.
@Suite(.serialized) struct TargetLifecycleEndToEnd {
    func balancer(
        targets: [IPEndpoint], type: TargetType = .instance,
        _ change: (inout TargetGroupConfiguration) -> Void = { _ in }
    ) throws -> (RunningBalancer, API) {
        var config = configuration(type: type, targets: targets) {
            $0.healthCheck.enabled = true
            change(&$0)
        }
        config.admin = AdminConfiguration(address: IPEndpoint(ip: loopback, port: 0))
        let lb = try RunningBalancer(config, timeScale: 0.01)
        return (lb, API(endpoint: lb.adminEndpoint!))
    }

    @Test func aTargetThatDiesTurnsUnhealthyAndItsFlowsAreReset() throws {
        let first = try TestServer()
        let second = try TestServer()
        let (lb, api) = try balancer(targets: [first.endpoint, second.endpoint])
        defer { lb.stop() }
        try api.waitFor(5, "both healthy") { $0.values.allSatisfy { $0 == "healthy" } && $0.count == 2 }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("x")
        let upstream = try first.acceptFlow(from: otherLoopback)
        _ = try upstream.receive(exactly: 1)
        first.stopListening()
        try api.waitFor(5, "the dead target unhealthy") { $0[first.endpoint.description] == "unhealthy" }
        // docs/health.md §4: connection termination is on by default, so the flow is reset both ways.
        #expect(client.receive() == .reset)
        #expect(upstream.receive() == .reset)
        #expect(try lb.endedFlows(count: 1)[0].closeReason == .targetUnhealthy)
        // New flows go to the healthy target only.
        let next = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try next.send("y")
        #expect(try second.acceptFlow(from: otherLoopback).receive(exactly: 1) == Array("y".utf8))
    }

    @Test func aDeregisteredTargetDrainsThenItsFlowIsReset() throws {
        let first = try TestServer()
        let second = try TestServer()
        let (lb, api) = try balancer(targets: [first.endpoint, second.endpoint]) {
            $0.deregistrationConnectionTermination = true  // 300 s × 0.01 = 3 s of draining
        }
        defer { lb.stop() }
        try api.waitFor(5, "both healthy") { $0.values.allSatisfy { $0 == "healthy" } && $0.count == 2 }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("a")
        let upstream = try first.acceptFlow(from: otherLoopback)
        _ = try upstream.receive(exactly: 1)

        let (status, _) = try api.call(
            "POST", "/target-groups/tg/deregister", #"{"Targets":[{"Id":"127.0.0.1","Port":\#(first.endpoint.port)}]}"#)
        #expect(status == 200)
        #expect(try api.states()[first.endpoint.description] == "draining")
        // The open flow carries on while draining...
        try client.send("still here")
        #expect(try upstream.receive(exactly: 10) == Array("still here".utf8))
        // ...new flows do not go to the draining target...
        let other = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try other.send("b")
        #expect(try second.acceptFlow(from: otherLoopback).receive(exactly: 1) == Array("b".utf8))
        // ...and when the delay ends, with termination on, the flow is reset and the target is gone.
        client.setTimeout(10)
        #expect(client.receive() == .reset)
        #expect(try lb.endedFlows(count: 1, within: 10)[0].closeReason == .targetDeregistered)
        #expect(try api.states()[first.endpoint.description] == nil)
    }

    @Test func registeringADrainingTargetBringsItBack() throws {
        let first = try TestServer()
        let (lb, api) = try balancer(targets: [first.endpoint])
        defer { lb.stop() }
        try api.waitFor(5, "healthy") { $0[first.endpoint.description] == "healthy" }
        let body = #"{"Targets":[{"Id":"127.0.0.1","Port":\#(first.endpoint.port)}]}"#
        _ = try api.call("POST", "/target-groups/tg/deregister", body)
        #expect(try api.states()[first.endpoint.description] == "draining")
        _ = try api.call("POST", "/target-groups/tg/register", body)
        #expect(try api.states()[first.endpoint.description] == "healthy")
    }

    @Test func everyTargetUnhealthyMeansFailOpen() throws {
        // The target serves traffic but its health-check port is closed: it turns unhealthy, and as
        // the only target the group fails open and still routes to it (docs/health.md §4).
        let server = try TestServer()
        let closed = try closedPort()
        let (lb, api) = try balancer(targets: [server.endpoint]) { $0.healthCheck.port = closed }
        defer { lb.stop() }
        try api.waitFor(5, "unhealthy") { $0[server.endpoint.description] == "unhealthy" }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("routed anyway")
        #expect(try server.acceptFlow(from: otherLoopback).receive(exactly: 13) == Array("routed anyway".utf8))
        let (_, metrics) = try api.call("GET", "/metrics")
        let text = metrics["text"] as? String ?? ""
        #expect(
            text.contains(#"localnlb_unhealthy_routing_flow_count_total{load_balancer="test-nlb",target_group="tg"} 1"#)
        )
        #expect(text.contains(#"localnlb_unhealthy_host_count{load_balancer="test-nlb",target_group="tg"} 1"#))
    }

    @Test func anHTTPCheckFailsByTheMatcher() throws {
        let failing = try HTTPStatusServer(status: 500)
        let passing = try HTTPStatusServer(status: 200)
        defer {
            failing.stop()
            passing.stop()
        }
        let (lb, api) = try balancer(targets: [failing.server.endpoint, passing.server.endpoint], type: .ip) {
            $0.healthCheck.protocolName = .http
            $0.healthCheck.path = "/health"
        }
        defer { lb.stop() }
        try api.waitFor(5, "500 unhealthy, 200 healthy") {
            $0[failing.server.endpoint.description] == "unhealthy"
                && $0[passing.server.endpoint.description] == "healthy"
        }
        // The request is the one an ELB sends (seed 000), with the node and listener port as Host.
        let request = String(decoding: passing.received[0], as: UTF8.self)
        #expect(
            request
                == "GET /health HTTP/1.1\r\nHost: \(lb.endpoint())\r\nConnection: close\r\n"
                + "User-Agent: ELB-HealthChecker/2.0\r\nAccept-Encoding: gzip, compressed\r\n\r\n")
    }

    @Test func withProxyV2EveryCheckStartsWithTheLocalHeader() throws {
        let server = try TestServer()
        let (lb, _) = try balancer(targets: [server.endpoint]) {
            $0.proxyProtocol = .v2(awsTLVs: true, vpcEndpointID: nil)
        }
        defer { lb.stop() }
        let check = try server.accept()
        #expect(check.peer?.ip == loopback)
        #expect(try check.receive(exactly: 100) == ProxyHeader.awsHealthCheck().encoded())
    }
}

extension TestServer {
    /// Stops listening: connects are refused from now on; accepted connections are untouched.
    func stopListening() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }
}
