import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// Prometheus counters only grow: `processed_bytes_total` keeps every byte of a flow after the flow
/// ends, however it ends (it fell back to 0 when a flow closed, which breaks `rate()`).
@Suite(.serialized) struct MonotonicCounters {
    func processedBytes(_ api: API) throws -> UInt64 {
        let (_, json) = try api.call("GET", "/metrics")
        let text = json["text"] as? String ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("localnlb_processed_bytes_total{") }
        return UInt64(line?.split(separator: " ").last ?? "") ?? 0
    }

    @Test func processedBytesNeverGoBackWhicheverSideEndsTheFlow() throws {
        let server = try TestServer()
        let lb = try RunningBalancer.withControlAPI(to: server)
        defer { lb.stop() }
        let api = API(endpoint: lb.adminEndpoint!)
        var expected: UInt64 = 0
        var seen: [UInt64] = []
        for ending in ["client FIN", "target FIN", "client RST", "target RST"] {
            let (client, upstream) = try openFlow(through: lb, to: server)  // 1 byte client → target
            let payload = [UInt8](repeating: 7, count: 10_000)
            try upstream.send(payload)
            _ = try client.receive(exactly: payload.count)
            expected += 1 + UInt64(payload.count)
            // Counted while the flow is open...
            let deadline = Date().addingTimeInterval(5)
            while try processedBytes(api) < expected && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            seen.append(try processedBytes(api))
            switch ending {
            case "client FIN": try closeFlow(client: client, upstream: upstream)
            case "target FIN":
                upstream.shutdownWrite()
                _ = try client.receiveUntilEOF()
                client.close()
                upstream.close()
            case "client RST":
                client.resetAndClose()
                upstream.close()
            default:
                upstream.resetAndClose()
                client.close()
            }
            if ending == "client FIN" { expected += 3 }  // closeFlow's "bye"
            _ = try lb.endedFlows(count: seen.count / 2 + 1)
            // ...and still after it ended.
            seen.append(try processedBytes(api))
            #expect(seen.last == expected, "after \(ending): \(seen)")
        }
        #expect(seen == seen.sorted(), "the counter went back: \(seen)")
        // A change that publishes a new snapshot to the loops leaves every counter where it was.
        let before = try totals(api)
        let (status, _) = try api.call(
            "PUT", "/target-groups/tg/attributes",
            #"{"Attributes":[{"Key":"deregistration_delay.timeout_seconds","Value":"10"}]}"#)
        #expect(status == 200)
        #expect(try totals(api) == before)
        #expect(before["localnlb_new_flow_count_total"] == 4 && before["localnlb_tcp_client_reset_count_total"] == 1)
    }

    /// The balancer ends the flow itself: the idle timeout, a deregistration that terminates its flows,
    /// a change carried out (as a reload's is), the listener deleted. After each, no `_total` is lower
    /// than before and the bytes of every ended flow are still counted.
    @Test func countersHoldWhenTheBalancerEndsAFlow() throws {
        let server = try TestServer()
        var config = configuration(
            targets: [server.endpoint],
            attributes: {
                $0.deregistrationDelaySeconds = 0
                $0.deregistrationConnectionTermination = true
            }, idleTimeout: 1)
        config.admin = AdminConfiguration(address: IPEndpoint(ip: loopback, port: 0))
        let lb = try RunningBalancer(config)
        defer { lb.stop() }
        let api = API(endpoint: lb.adminEndpoint!)
        var expected: UInt64 = 0
        var last = try totals(api)
        var ended = 0
        func flowWithBytes() throws -> (client: TestSocket, upstream: TestSocket) {
            let (client, upstream) = try openFlow(through: lb, to: server)
            try upstream.send([UInt8](repeating: 1, count: 1000))
            _ = try client.receive(exactly: 1000)
            expected += 1001
            let deadline = Date().addingTimeInterval(5)
            while try processedBytes(api) < expected && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            return (client, upstream)
        }
        func checkAfter(_ ending: String) throws {
            ended += 1
            _ = try lb.endedFlows(count: ended)
            let now = try totals(api)
            for (name, value) in last {
                #expect((now[name] ?? 0) >= value, "\(name) went back after \(ending): \(value) → \(now[name] ?? 0)")
            }
            #expect(try processedBytes(api) == expected, "after \(ending)")
            last = now
        }

        // The idle timeout: the flow is forgotten, and the client's next bytes get a reset.
        let idle = try flowWithBytes()
        Thread.sleep(forTimeInterval: 1.3)
        try? idle.client.send("z")
        try checkAfter("the idle timeout")
        idle.client.close()
        idle.upstream.close()

        // A deregistration that terminates its target's flows (a delay of 0 s).
        let drained = try flowWithBytes()
        let target = #"{"Targets":[{"Id":"127.0.0.1","Port":\#(server.endpoint.port)}]}"#
        #expect(try api.call("POST", "/target-groups/tg/deregister", target).0 == 200)
        try checkAfter("deregistration")
        drained.client.close()
        drained.upstream.close()
        #expect(try api.call("POST", "/target-groups/tg/register", target).0 == 200)

        // A change the loops take as a new snapshot (what a reload does), with a flow open through it.
        let kept = try flowWithBytes()
        let listenerARN = ResourceNames(region: "us-east-1", accountID: "000000000000").listener(
            loadBalancer: "test-nlb", port: 0)
        let form =
            "Action=ModifyListenerAttributes&Version=2015-12-01&ListenerArn=\(SigV4.encode(listenerARN))"
            + "&Attributes.member.1.Key=tcp.idle_timeout.seconds&Attributes.member.1.Value=120"
        let (modified, _) = try ControlCommand.send(
            method: "POST", path: "/", body: form,
            headers: [
                ("Host", lb.adminEndpoint!.description), ("Content-Type", "application/x-www-form-urlencoded"),
            ], to: lb.adminEndpoint!)
        #expect(modified == 200)
        #expect(try totals(api).allSatisfy { $0.value >= last[$0.key] ?? 0 })

        // The listener deleted: its flows are reset.
        let deleted = "Action=DeleteListener&Version=2015-12-01&ListenerArn=\(SigV4.encode(listenerARN))"
        let (status, _) = try ControlCommand.send(
            method: "POST", path: "/", body: deleted,
            headers: [
                ("Host", lb.adminEndpoint!.description), ("Content-Type", "application/x-www-form-urlencoded"),
            ], to: lb.adminEndpoint!)
        #expect(status == 200)
        try checkAfter("the listener's deletion")
        kept.client.close()
        kept.upstream.close()
        #expect(
            try lb.endedFlows(count: 3).map(\.closeReason) == [.idleTimeout, .targetDeregistered, .listenerDeleted])
    }

    /// Every `_total` sample of the group, by name.
    func totals(_ api: API) throws -> [String: UInt64] {
        let (_, json) = try api.call("GET", "/metrics")
        var result: [String: UInt64] = [:]
        for line in (json["text"] as? String ?? "").split(separator: "\n") where line.contains("_total{") {
            let name = String(line.prefix { $0 != "{" })
            result[name, default: 0] += UInt64(line.split(separator: " ").last ?? "") ?? 0
        }
        return result
    }
}
