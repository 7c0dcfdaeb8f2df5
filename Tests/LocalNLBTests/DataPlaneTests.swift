import Foundation
import Glibc
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import LocalNLBTools
import ProxyProtocol
import Testing

/// Through the proxy, per mode: the exact source the target saw and the exact bytes it received.
@Suite(.serialized) struct ClientAddressModes {
    @Test func instanceTargetSeesTheClientAsItsPeer() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(type: .instance, targets: [server.endpoint]))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("hello")
        let upstream = try server.accept()
        #expect(upstream.peer?.ip == otherLoopback)
        #expect(try upstream.receive(exactly: 5) == Array("hello".utf8))
        client.close()
        upstream.close()
        let flow = try lb.endedFlows(count: 1)[0]
        #expect(flow.source?.ip == otherLoopback)
        #expect(flow.proxyHeader == nil)
    }

    @Test func ipTargetSeesTheNodeAddress() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(type: .ip, targets: [server.endpoint]))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("hello")
        let upstream = try server.accept()
        #expect(upstream.peer?.ip == loopback)
        #expect(try upstream.receive(exactly: 5) == Array("hello".utf8))
    }

    @Test func preserveClientIPAttributeOverridesTheTargetTypeDefault() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(
            configuration(type: .ip, targets: [server.endpoint]) { $0.preserveClientIP = true })
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("x")
        #expect(try server.accept().peer?.ip == otherLoopback)
    }

    @Test func proxyV2HeaderIsAWSShapedAndPrecedesThePayload() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(
            configuration(type: .ip, targets: [server.endpoint]) {
                $0.proxyProtocol = .v2(awsTLVs: true, vpcEndpointID: "vpce-08d2bf15fac5001c9")
            })
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("GET / HTTP/1.0\r\n\r\n")
        let upstream = try server.accept()
        let expected =
            ProxyHeader.aws(source: client.local, destination: lb.endpoint(), vpcEndpointID: "vpce-08d2bf15fac5001c9")
            .encoded() + Array("GET / HTTP/1.0\r\n\r\n".utf8)
        #expect(try upstream.receive(exactly: expected.count) == expected)
        #expect(upstream.peer?.ip == loopback)
    }

    @Test func proxyV2WithoutTLVsIsTheAddressBlockOnly() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(
            configuration(type: .ip, targets: [server.endpoint]) {
                $0.proxyProtocol = .v2(awsTLVs: false, vpcEndpointID: nil)
            })
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("x")
        let upstream = try server.accept()
        let header = try upstream.receive(exactly: 28)
        #expect(Array(header[12..<16]) == [0x21, 0x11, 0x00, 0x0C])
        #expect(
            try ProxyHeaderParser().parse(header)
                == .header(
                    ProxyHeader(version: .v2, addresses: .inet(source: client.local, destination: lb.endpoint()))
                        .withFamilyByte(0x11), consumed: 28))
        #expect(try upstream.receive(exactly: 1) == Array("x".utf8))
    }

    @Test func classicProxyV1Line() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(type: .ip, targets: [server.endpoint]) { $0.proxyProtocol = .v1 })
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        try client.send("x")
        let upstream = try server.accept()
        let line = "PROXY TCP4 127.0.0.2 127.0.0.1 \(client.local.port) \(lb.endpoint().port)\r\nx"
        #expect(try upstream.receive(exactly: line.utf8.count) == Array(line.utf8))
    }

    @Test func ipv6ClientNodeAndTargetGetATCP6Header() throws {
        let server = try TestServer(on: loopback6)
        let lb = try RunningBalancer(
            configuration(
                type: .ip, targets: [server.endpoint],
                attributes: { $0.proxyProtocol = .v2(awsTLVs: true, vpcEndpointID: nil) },
                nodes: [LoadBalancerNode(subnetID: "subnet-test", ipv4: loopback, ipv6: loopback6)]))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(ipv6: true), from: loopback6)
        try client.send("six")
        let upstream = try server.accept()
        #expect(upstream.peer?.ip == loopback6)
        let expected = ProxyHeader.aws(source: client.local, destination: lb.endpoint(ipv6: true)).encoded()
        #expect(Array(expected[12..<14]) == [0x21, 0x21])
        #expect(try upstream.receive(exactly: expected.count + 3) == expected + Array("six".utf8))
    }

    @Test func ipv6InstanceTargetSeesTheIPv6Client() throws {
        let server = try TestServer(on: loopback6)
        let lb = try RunningBalancer(
            configuration(
                type: .instance, targets: [server.endpoint],
                nodes: [LoadBalancerNode(subnetID: "subnet-test", ipv4: nil, ipv6: loopback6)]))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(ipv6: true), from: loopback6)
        try client.send("x")
        let upstream = try server.accept()
        #expect(upstream.peer?.ip == loopback6)
    }
}

extension ProxyHeader {
    func withFamilyByte(_ byte: UInt8) -> ProxyHeader {
        var copy = self
        copy.familyByte = byte
        return copy
    }
}

@Suite(.serialized) struct Selection {
    @Test func leastConnectionsWithHeldOpenFlows() throws {
        let servers = try (0..<3).map { _ in try TestServer() }
        let lb = try RunningBalancer(configuration(targets: servers.map(\.endpoint)))
        defer { lb.stop() }
        // Three held-open flows land one on each target (ties rotate from the first).
        var clients: [TestSocket] = []
        var upstreams: [TestSocket] = []
        for server in servers {
            clients.append(try TestSocket.connect(to: lb.endpoint()))
            upstreams.append(try server.accept())
        }
        // One more flow on target 0 and one on target 1: target 2 is now the least loaded...
        clients.append(try TestSocket.connect(to: lb.endpoint()))
        upstreams.append(try servers[0].accept())
        clients.append(try TestSocket.connect(to: lb.endpoint()))
        upstreams.append(try servers[1].accept())
        clients.append(try TestSocket.connect(to: lb.endpoint()))
        upstreams.append(try servers[2].accept())
        // ...then closing both flows of target 1 makes it the only least-loaded target, twice over.
        for index in [1, 4] {
            clients[index].close()
            upstreams[index].close()
        }
        _ = try lb.endedFlows(count: 2)
        clients.append(try TestSocket.connect(to: lb.endpoint()))
        upstreams.append(try servers[1].accept())
        clients.append(try TestSocket.connect(to: lb.endpoint()))
        upstreams.append(try servers[1].accept())
        #expect(!servers[0].hasPendingConnection(within: 0.1))
        #expect(!servers[2].hasPendingConnection(within: 0.1))
    }
}

@Suite(.serialized) struct Transfer {
    /// A checksum cheap enough for 64 MiB in a debug build: sums of 64-bit words.
    static func checksum(_ bytes: [UInt8]) -> (UInt64, UInt64) {
        bytes.withUnsafeBytes { raw in
            var a: UInt64 = 0
            var b: UInt64 = 0
            let words = raw.count / 8
            let pointer = raw.baseAddress!
            for i in 0..<words {
                a &+= pointer.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                b &+= a
            }
            for i in (words * 8)..<raw.count { a &+= UInt64(raw[i]); b &+= a }
            return (a, b)
        }
    }

    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                words[i] = state
            }
        }
        return bytes
    }

    /// Backpressure: a target that reads nothing stops the client once the buffers on the way are full
    /// (LocalNLB holds at most a pipe per direction), and when it reads, every byte arrives in order.
    @Test func aTargetThatDoesNotReadStopsTheClientAndLosesNothing() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint]))
        defer { lb.stop() }
        let (client, upstream) = try openFlow(through: lb, to: server)
        // Byte n of the stream is n % 251: any loss or reordering shows.
        let pattern = (0..<(1 << 20) + 251).map { UInt8($0 % 251) }
        var sent = 0
        var lastProgress = Date()
        while Date().timeIntervalSince(lastProgress) < 0.5 && sent < 256 << 20 {
            let start = sent % 251
            let n = pattern[start..<(start + (1 << 20))].withUnsafeBytes {
                Glibc.send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n > 0 {
                sent += n
                lastProgress = Date()
            } else {
                #expect(errno == EAGAIN)
                usleep(2000)
            }
        }
        // Stopped: what is in flight is bounded by socket buffers and one pipe, far below 256 MiB.
        #expect(sent > 1 << 20)
        #expect(sent < 64 << 20)
        var received = 0
        upstream.setTimeout(5)
        while received < sent {
            guard case .data(let bytes) = upstream.receive(max: 1 << 20) else {
                Issue.record("the target got \(received) of \(sent) bytes")
                return
            }
            let start = received % 251
            guard bytes.elementsEqual(pattern[start..<(start + bytes.count)]) else {
                Issue.record("the bytes after \(received) are not what the client sent")
                return
            }
            received += bytes.count
        }
        #expect(received == sent)
    }

    @Test func sixtyFourMebibytesEachWayAtOnce() throws {
        let size = 64 << 20
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint]))
        defer { lb.stop() }
        let up = Self.randomBytes(size, seed: 1)
        let down = Self.randomBytes(size, seed: 2)
        let client = try TestSocket.connect(to: lb.endpoint(), timeout: 30)
        let upstream = try server.accept()
        upstream.setTimeout(30)
        let group = DispatchGroup()
        nonisolated(unsafe) var sendErrors: [Error] = []
        let errorsLock = NSLock()
        for (socket, bytes) in [(client, up), (upstream, down)] {
            group.enter()
            Thread.detachNewThread {
                do { try socket.send(bytes) } catch {
                    errorsLock.lock()
                    sendErrors.append(error)
                    errorsLock.unlock()
                }
                socket.shutdownWrite()
                group.leave()
            }
        }
        nonisolated(unsafe) var receivedUp: [UInt8] = []
        group.enter()
        Thread.detachNewThread {
            receivedUp = (try? upstream.receiveUntilEOF()) ?? []
            group.leave()
        }
        let receivedDown = try client.receiveUntilEOF()
        #expect(group.wait(timeout: .now() + 60) == .success)
        #expect(sendErrors.isEmpty)
        #expect(receivedUp.count == size)
        #expect(receivedDown.count == size)
        #expect(Self.checksum(receivedUp) == Self.checksum(up))
        #expect(Self.checksum(receivedDown) == Self.checksum(down))
        let flow = try lb.endedFlows(count: 1)[0]
        #expect(flow.bytesFromClient == UInt64(size))
        #expect(flow.bytesFromTarget == UInt64(size))
    }

    @Test func clientHalfCloseReachesTheTargetWhichCanStillAnswer() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint]))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        try client.send("request")
        client.shutdownWrite()
        let upstream = try server.accept()
        #expect(try upstream.receiveUntilEOF() == Array("request".utf8))
        try upstream.send("answer after your FIN")
        upstream.close()
        #expect(try client.receiveUntilEOF() == Array("answer after your FIN".utf8))
        #expect(try lb.endedFlows(count: 1)[0].closeReason == .clientFIN)
    }

    @Test func targetHalfCloseReachesTheClientWhichCanStillSend() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint]))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        let upstream = try server.accept()
        try upstream.send("banner")
        upstream.shutdownWrite()
        #expect(try client.receiveUntilEOF() == Array("banner".utf8))
        try client.send("still talking")
        client.shutdownWrite()
        #expect(try upstream.receiveUntilEOF() == Array("still talking".utf8))
        #expect(try lb.endedFlows(count: 1)[0].closeReason == .targetFIN)
    }
}

@Suite(.serialized) struct Failures {
    @Test func refusingTargetMeansAResetForTheClient() throws {
        let port = try closedPort()
        let lb = try RunningBalancer(configuration(targets: [IPEndpoint(ip: loopback, port: port)]))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        #expect(client.receive() == .reset)
        #expect(try lb.endedFlows(count: 1)[0].closeReason == .connectRefused)
    }

    @Test func emptyTargetGroupResetsTheClient() throws {
        let lb = try RunningBalancer(configuration(targets: []))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        #expect(client.receive() == .reset)
        #expect(try lb.endedFlows(count: 1)[0].closeReason == .noTarget)
    }

    /// A RST from one side becomes a RST to the other (docs/flows.md §5).
    @Test(arguments: [true, false]) func aResetIsPassedOn(byClient: Bool) throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint]))
        defer { lb.stop() }
        let (client, upstream) = try openFlow(through: lb, to: server)
        let (resetter, other) = byClient ? (client, upstream) : (upstream, client)
        resetter.resetAndClose()
        #expect(other.receive() == .reset)
        #expect(try lb.endedFlows(count: 1)[0].closeReason == (byClient ? .clientRST : .targetRST))
    }

    @Test func idleTimeoutResetsTheSideThatSpeaksNextAndTellsTheOtherNothing() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint], idleTimeout: 1))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        try client.send("ping")
        let upstream = try server.accept()
        #expect(try upstream.receive(exactly: 4) == Array("ping".utf8))
        #expect(try lb.endedFlows(count: 1, within: 5)[0].closeReason == .idleTimeout)
        // The client speaks next: it gets a RST...
        try client.send("anyone?")
        #expect(client.receive() == .reset)
        // ...and the target is told nothing: no bytes, no FIN, no RST.
        upstream.setTimeout(0.5)
        #expect(upstream.receive() == .timeout)
        // When the target speaks, it is reset too.
        try upstream.send("late answer")
        #expect(upstream.receive() == .reset)
    }

    /// A client that only waits learns nothing of the idle timeout: no RST, no FIN, long after it
    /// (it got a RST at twice the timeout when forgotten flows were closed on a timer); it finds out
    /// when it sends.
    @Test func aWaitingClientIsToldNothingAfterTheIdleTimeout() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint], idleTimeout: 1))
        defer { lb.stop() }
        let (client, upstream) = try openFlow(through: lb, to: server)
        #expect(try lb.endedFlows(count: 1, within: 5)[0].closeReason == .idleTimeout)
        // Three timeouts on from the expiry: still nothing either way.
        client.setTimeout(3)
        #expect(client.receive() == .timeout)
        upstream.setTimeout(0.1)
        #expect(upstream.receive() == .timeout)
        try client.send("still there?")
        #expect(client.receive() == .reset)
    }

    @Test func balancerSurvivesATargetThatRefusesWhileOthersFlow() throws {
        let server = try TestServer()
        let port = try closedPort()
        let lb = try RunningBalancer(
            configuration(targets: [IPEndpoint(ip: loopback, port: port), server.endpoint]) {
                $0.algorithm = .roundRobin
            })
        defer { lb.stop() }
        let refused = try TestSocket.connect(to: lb.endpoint())
        #expect(refused.receive() == .reset)
        let client = try TestSocket.connect(to: lb.endpoint())
        try client.send("ok")
        #expect(try server.accept().receive(exactly: 2) == Array("ok".utf8))
    }
}

@Suite(.serialized) struct HeaderPlacementTests {
    func bannerTarget() throws -> TargetServer {
        let target = try TargetServer(
            options: .init(listen: IPEndpoint(ip: loopback, port: 0), proxyMode: .required, banner: "220 smtp ready"))
        target.start()
        return target
    }

    @Test func onFirstAckWithPayloadStallsAServerSpeaksFirstTarget() throws {
        let target = try bannerTarget()
        defer { target.stop() }
        let lb = try RunningBalancer(
            configuration(targets: [target.endpoint]) { $0.proxyProtocol = .v2(awsTLVs: true, vpcEndpointID: nil) })
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(), timeout: 0.7)
        // As on AWS: the header waits for the client's first bytes, so the banner never comes.
        #expect(client.receive() == .timeout)
        try client.send("EHLO client\r\n")
        client.setTimeout(5)
        let received = try client.receive(exactly: "220 smtp ready\r\n".utf8.count)
        #expect(received == Array("220 smtp ready\r\n".utf8))
    }

    @Test func onFirstAckSendsTheHeaderAtOnce() throws {
        let target = try bannerTarget()
        defer { target.stop() }
        let lb = try RunningBalancer(
            configuration(targets: [target.endpoint]) {
                $0.proxyProtocol = .v2(awsTLVs: true, vpcEndpointID: nil)
                $0.headerPlacement = .onFirstAck
            })
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        let received = try client.receive(exactly: "220 smtp ready\r\n".utf8.count)
        #expect(received == Array("220 smtp ready\r\n".utf8))
    }
}

@Suite(.serialized) struct Lifecycle {
    @Test func stopLetsFlowsFinishWithinTheDrainTime() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint]), drainSeconds: 5)
        let (client, upstream) = try openFlow(through: lb, to: server)
        lb.balancer.stop()
        // New clients are refused once the listener is closed...
        Thread.sleep(forTimeInterval: 0.2)
        #expect(throws: SystemError.self) { try TestSocket.connect(to: lb.endpoint()) }
        // ...while the open flow still works, and the loop exits once it ends.
        try closeFlow(client: client, upstream: upstream)
        #expect(lb.exited(within: 5))
        #expect(try lb.endedFlows(count: 1)[0].closeReason == .clientFIN)
    }

    @Test func flowsStillOpenAfterTheDrainTimeAreReset() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint]), drainSeconds: 0.3)
        let (client, upstream) = try openFlow(through: lb, to: server)
        lb.balancer.stop()
        #expect(lb.exited(within: 5))
        #expect(client.receive() == .reset)
        #expect(upstream.receive() == .reset)
        #expect(try lb.endedFlows(count: 1)[0].closeReason == .shutdown)
    }

    @Test func aListenerPortInUseIsOneClearError() throws {
        let busy = try Socket.listen(on: IPEndpoint(ip: loopback, port: 0))
        defer { closeDescriptor(busy) }
        let port = Socket.localEndpoint(busy)!.port
        var config = configuration(targets: [])
        config.listeners[0].port = port
        #expect {
            _ = try LoadBalancer(configuration: config)
        } throws: { error in
            "\(error)"
                == "listener 127.0.0.1:\(port): address already in use (is another localnlb, or another server, on that port?)"
        }
    }

    @Test func flowLogWritesOneJSONLinePerFlow() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "flowlog-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let server = try TestServer()
        let lb = try RunningBalancer(
            configuration(targets: [server.endpoint]), flowLog: try FlowLog.jsonLines(path: path))
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        let clientEndpoint = client.local
        try client.send("abc")
        let upstream = try server.accept()
        _ = try upstream.receive(exactly: 3)
        upstream.close()
        _ = try client.receiveUntilEOF()
        client.close()
        _ = try lb.endedFlows(count: 1)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let json = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect(json["closeReason"] as? String == "target FIN")
        #expect(json["bytesFromClient"] as? Int == 3)
        #expect(json["target"] as? String == server.endpoint.description)
        #expect(json["client"] as? String == clientEndpoint.description)
    }
}

@Suite(.serialized) struct Descriptors {
    /// This process's open descriptors: all of them, and the pipes among them.
    static func openDescriptors() throws -> (all: Int, pipes: Int) {
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
        let pipes = names.filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0))?.hasPrefix("pipe:")
                == true
        }
        return (names.count, pipes.count)
    }

    /// An idle flow costs its two sockets: pipes are held only while bytes are in them.
    @Test func anIdleFlowHoldsNoPipes() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(configuration(targets: [server.endpoint]))
        defer { lb.stop() }
        var held: [TestSocket] = []
        // 256 KiB each way: more than the copy buffer, so both directions splice through a pipe.
        let bulk = [UInt8](repeating: 0x5A, count: 256 << 10)
        func openFlows(_ count: Int) throws {
            for _ in 0..<count {
                let client = try TestSocket.connect(to: lb.endpoint())
                try client.send(bulk)
                let upstream = try server.accept()
                _ = try upstream.receive(exactly: bulk.count)
                try upstream.send(bulk)
                _ = try client.receive(exactly: bulk.count)
                held += [client, upstream]
            }
        }
        // A first batch warms every loop's pipe pool (the kernel spreads clients over the loops), so
        // the pools' spare pipes are in the baseline.
        try openFlows(20)
        // Other suites run at the same time and open descriptors of their own: a batch that saw
        // theirs come or go is measured again.
        var seen: [(all: Int, pipes: Int)] = []
        for _ in 0..<3 {
            let before = try Self.openDescriptors()
            try openFlows(20)
            let after = try Self.openDescriptors()
            seen.append((after.all - before.all, after.pipes - before.pipes))
            if seen.last! == (80, 0) { break }
        }
        // Per flow: the test's client and accepted sockets, and the balancer's two sockets; no pipe.
        #expect(seen.last! == (20 * 4, 0), "descriptors and pipes added per batch of 20 idle flows: \(seen)")
    }
}
