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
