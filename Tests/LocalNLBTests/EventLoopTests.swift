import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// Several event loops: flows land on each, and what the user sees (least connections, the control
/// API, resets on a target's change of state, draining) is the same as with one.
@Suite(.serialized) struct EventLoops {
    /// Loop i of n numbers its flows i+1, i+1+n…: with two loops, odd ids are loop 0's.
    static func loops(ofFlowIDs ids: [Int]) -> Set<Int> { Set(ids.map { ($0 - 1) % 2 }) }

    func start(
        targets: [IPEndpoint], type: TargetType = .ip, timeScale: Double = 1, drainSeconds: Double = 0.3,
        _ change: (inout TargetGroupConfiguration) -> Void = { _ in }
    ) throws -> (RunningBalancer, API) {
        var config = configuration(type: type, targets: targets, attributes: change)
        config.admin = AdminConfiguration(address: IPEndpoint(ip: loopback, port: 0))
        let lb = try RunningBalancer(config, drainSeconds: drainSeconds, timeScale: timeScale, eventLoops: 2)
        return (lb, API(endpoint: lb.adminEndpoint!))
    }

    /// Opens a flow and returns both ends, the target's end from whichever server took it.
    func openFlowToAny(_ lb: RunningBalancer, _ servers: [TestServer]) throws -> (client: TestSocket, target: Int) {
        let client = try TestSocket.connect(to: lb.endpoint())
        try client.send("x")
        for _ in 0..<100 {
            for (index, server) in servers.enumerated() where server.hasPendingConnection(within: 0.01) {
                return (client, index)
            }
        }
        throw TestFailure("no target got the flow")
    }

    /// Opens `count` flows and returns both ends of each, to be held open.
    func openFlows(_ count: Int, through lb: RunningBalancer, to server: TestServer) throws -> [TestSocket] {
        var held: [TestSocket] = []
        for _ in 0..<count {
            let (client, upstream) = try openFlow(through: lb, to: server)
            held += [client, upstream]
        }
        return held
    }

    @Test func flowsLandOnEveryLoopAndTheAPISeesThemAll() throws {
        let server = try TestServer()
        let (lb, api) = try start(targets: [server.endpoint])
        defer { lb.stop() }
        let held = try openFlows(24, through: lb, to: server)
        defer { withExtendedLifetime(held) {} }
        let flows = try api.call("GET", "/flows").1["Flows"] as! [[String: Any]]
        #expect(flows.count == 24)
        let ids = flows.map { $0["id"] as! Int }
        #expect(ids == ids.sorted())
        // The kernel spreads clients over both loops' sockets (24 all on one: one chance in 8 million).
        #expect(Self.loops(ofFlowIDs: ids) == [0, 1])
        let text = try api.call("GET", "/metrics").1["text"] as? String ?? ""
        let labels = #"{load_balancer="test-nlb",target_group="tg"}"#
        #expect(text.contains("localnlb_new_flow_count_total\(labels) 24\n"))
        #expect(text.contains("localnlb_active_flow_count\(labels) 24\n"))
        #expect(text.contains("localnlb_processed_bytes_total\(labels) 24\n"))
        let health = try api.call("GET", "/target-groups/tg/health").1["TargetHealthDescriptions"] as! [[String: Any]]
        #expect(health[0]["ActiveFlowCount"] as? Int == 24)
    }

    /// Least connections counts every loop's flows: after one target's flows end, the next flows all
    /// go to it, whichever loop takes them.
    @Test func leastConnectionsCountsTheFlowsOfEveryLoop() throws {
        let servers = try (0..<2).map { _ in try TestServer() }
        let (lb, _) = try start(targets: servers.map(\.endpoint))
        defer { lb.stop() }
        var flows: [(client: TestSocket, target: Int)] = []
        var upstreams: [[TestSocket]] = [[], []]
        for _ in 0..<12 {
            let flow = try openFlowToAny(lb, servers)
            upstreams[flow.target].append(try servers[flow.target].accept())
            flows.append(flow)
        }
        #expect(upstreams.map(\.count) == [6, 6])
        for flow in flows where flow.target == 1 { flow.client.close() }
        for upstream in upstreams[1] { upstream.close() }
        _ = try lb.endedFlows(count: 6)
        upstreams[1] = []
        for _ in 0..<6 {
            let flow = try openFlowToAny(lb, servers)
            #expect(flow.target == 1)
            upstreams[flow.target].append(try servers[flow.target].accept())
            flows.append(flow)
        }
        // Even again: the next two go one to each.
        var next: [Int] = []
        for _ in 0..<2 {
            let flow = try openFlowToAny(lb, servers)
            next.append(flow.target)
            upstreams[flow.target].append(try servers[flow.target].accept())
            flows.append(flow)
        }
        #expect(next.sorted() == [0, 1])
    }

    /// A target's change of state resets its flows on every loop, and no loop sends it new ones.
    @Test func deregistrationResetsTheFlowsOfEveryLoop() throws {
        let first = try TestServer()
        let second = try TestServer()
        let (lb, api) = try start(targets: [first.endpoint, second.endpoint], timeScale: 0.01) {
            $0.deregistrationConnectionTermination = true
            $0.deregistrationDelaySeconds = 50  // 0.5 s at this time scale
        }
        defer { lb.stop() }
        var clients: [TestSocket] = []
        var upstreams: [TestSocket] = []
        var others: [TestSocket] = []
        for _ in 0..<40 {
            let flow = try openFlowToAny(lb, [first, second])
            let upstream = try (flow.target == 0 ? first : second).accept()
            if flow.target == 0 {
                clients.append(flow.client)
                upstreams.append(upstream)
            } else {
                others += [flow.client, upstream]
            }
        }
        #expect(clients.count == 20)
        let flowsOnFirst = (try api.call("GET", "/flows").1["Flows"] as! [[String: Any]])
            .filter { $0["target"] as? String == first.endpoint.description }.map { $0["id"] as! Int }
        #expect(Self.loops(ofFlowIDs: flowsOnFirst) == [0, 1])
        let body = #"{"Targets":[{"Id":"127.0.0.1","Port":\#(first.endpoint.port)}]}"#
        #expect(try api.call("POST", "/target-groups/tg/deregister", body).0 == 200)
        // While it drains, no loop sends it a new flow.
        for _ in 0..<6 {
            let flow = try openFlowToAny(lb, [first, second])
            #expect(flow.target == 1)
            others += [flow.client, try second.accept()]
        }
        for client in clients {
            client.setTimeout(5)
            #expect(client.receive() == .reset)
        }
        let reasons = try lb.endedFlows(count: 20).map(\.closeReason)
        #expect(reasons == Array(repeating: .targetDeregistered, count: 20))
    }

    /// A health check's verdict reaches every loop: once a target is unhealthy (no connection
    /// termination here, so nothing is reset to carry the news), no loop sends it new flows.
    @Test func aTargetTurningUnhealthyStopsTakingFlowsOnEveryLoop() throws {
        let first = try TestServer()
        let second = try TestServer()
        // Instance targets see the client's address, so flows and health checks (from the node) differ.
        let (lb, api) = try start(targets: [first.endpoint, second.endpoint], type: .instance, timeScale: 0.01) {
            $0.healthCheck.enabled = true
            $0.unhealthyConnectionTermination = false
        }
        defer { lb.stop() }
        try api.waitFor(5, "both healthy") { $0.values.allSatisfy { $0 == "healthy" } && $0.count == 2 }
        first.stopListening()
        try api.waitFor(5, "the first unhealthy") { $0[first.endpoint.description]?.hasPrefix("unhealthy") == true }
        var held: [TestSocket] = []
        for _ in 0..<24 {
            let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
            try client.send("x")
            held += [client, try second.acceptFlow(from: otherLoopback)]
        }
        let ids = (try api.call("GET", "/flows").1["Flows"] as! [[String: Any]]).map { $0["id"] as! Int }
        #expect(ids.count == 24)
        #expect(Self.loops(ofFlowIDs: ids) == [0, 1])
    }

    /// `/flows` pages through every loop's flows by id: `MaxItems` per page, `NextMarker` to go on.
    @Test func flowsArePagedAcrossLoops() throws {
        let server = try TestServer()
        let (lb, api) = try start(targets: [server.endpoint])
        defer { lb.stop() }
        let held = try openFlows(24, through: lb, to: server)
        defer { withExtendedLifetime(held) {} }
        var ids: [Int] = []
        var pages: [Int] = []
        var marker: String?
        repeat {
            let path = "/flows?MaxItems=10" + (marker.map { "&Marker=\($0)" } ?? "")
            let (status, json) = try api.call("GET", path)
            #expect(status == 200)
            let flows = json["Flows"] as! [[String: Any]]
            pages.append(flows.count)
            ids += flows.map { $0["id"] as! Int }
            marker = json["NextMarker"] as? String
        } while marker != nil && pages.count < 10
        #expect(pages == [10, 10, 4])
        #expect(ids == ids.sorted() && Set(ids).count == 24)
        #expect(Self.loops(ofFlowIDs: ids) == [0, 1])
        #expect(try api.call("GET", "/flows?MaxItems=0").0 == 400)
        #expect(try api.call("GET", "/flows?Marker=x").0 == 400)
    }

    /// Stopping drains the flows of every loop, then the balancer returns.
    @Test func stopDrainsEveryLoop() throws {
        let server = try TestServer()
        let (lb, _) = try start(targets: [server.endpoint], drainSeconds: 5)
        var pairs: [(TestSocket, TestSocket)] = []
        for _ in 0..<24 { pairs.append(try openFlow(through: lb, to: server)) }
        lb.balancer.stop()
        Thread.sleep(forTimeInterval: 0.2)
        #expect(throws: SystemError.self) { try TestSocket.connect(to: lb.endpoint()) }
        // Within the drain time both ends may still talk; closing ends each flow normally.
        for (client, upstream) in pairs { try closeFlow(client: client, upstream: upstream) }
        #expect(lb.exited(within: 5))
        let ended = try lb.endedFlows(count: 24)
        #expect(ended.allSatisfy { $0.closeReason == .clientFIN })
        #expect(Self.loops(ofFlowIDs: ended.map { Int($0.id) }) == [0, 1])
    }

    /// Every loop's listener socket is closed when the balancer never runs, and when making it fails
    /// part-way: a port left half-open would refuse the next localnlb.
    @Test func aBalancerThatNeverRunsOrFailsToOpenFreesEveryLoopsSockets() throws {
        var options = LoadBalancerOptions()
        options.eventLoops = 2
        options.log = { _ in }
        let endpoint: IPEndpoint
        do {
            let unused = try LoadBalancer(configuration: configuration(targets: []), options: options)
            endpoint = unused.listenerEndpoints[0].endpoint
            #expect(throws: SystemError.self) { try Socket.listen(on: endpoint) }
            withExtendedLifetime(unused) {}
        }
        closeDescriptor(try Socket.listen(on: endpoint))

        // The second listener's port is taken: the first one's sockets, already open, are closed again.
        let free = try closedPort()
        let taken = try Socket.listen(on: IPEndpoint(ip: loopback, port: 0))
        defer { closeDescriptor(taken) }
        var config = configuration(targets: [])
        config.listeners = [free, Socket.localEndpoint(taken)!.port].map {
            ListenerConfiguration(
                loadBalancerName: "test-nlb", port: $0, targetGroupName: "tg", idleTimeoutSeconds: 350)
        }
        #expect(throws: ListenerError.self) { try LoadBalancer(configuration: config, options: options) }
        closeDescriptor(try Socket.listen(on: IPEndpoint(ip: loopback, port: free)))
    }
}
