import CLocalNLB
import Foundation
import Glibc
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// docs/flows.md §5: a TCP keepalive resets the idle timer, though it moves no bytes.
@Suite struct Keepalives {
    @Test func aKeepaliveKeepsTheFlowAQuietFlowExpires() throws {
        let server = try TestServer()
        // 60 s of idle timeout (AWS's least) scaled to 3 s.
        let lb = try RunningBalancer(configuration(targets: [server.endpoint], idleTimeout: 60), timeScale: 0.05)
        defer { lb.stop() }
        let kept = try openFlow(through: lb, to: server)
        // The client's kernel probes after 1 s of quiet, then every second.
        try Socket.setOption(kept.client.fd, SOL_SOCKET, SO_KEEPALIVE, 1)
        try Socket.setOption(kept.client.fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, 1)
        try Socket.setOption(kept.client.fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, 1)
        let quiet = try openFlow(through: lb, to: server)
        let ended = try lb.endedFlows(count: 1, within: 6)
        #expect(ended.count == 1 && ended[0].closeReason == .idleTimeout)
        Thread.sleep(forTimeInterval: 2.5)  // well past the idle timeout for the kept flow too
        #expect(try lb.endedFlows(count: 1, within: 0.1).count == 1)
        try kept.client.send("still here")
        #expect(try kept.upstream.receive(exactly: 10) == Array("still here".utf8))
        try closeFlow(client: kept.client, upstream: kept.upstream)
        quiet.client.close()
        quiet.upstream.close()
    }
}
