import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import LocalNLBTools
import ProxyProtocol
import Testing

/// The built-in target: what it reports, and what it does with PROXY headers in each mode.
@Suite(.serialized) struct BuiltInTarget {
    func start(_ mode: TargetServer.ProxyMode) throws -> TargetServer {
        let server = try TargetServer(
            options: .init(listen: IPEndpoint(ip: loopback, port: 0), name: "t1", proxyMode: mode))
        server.start()
        return server
    }

    /// Sends `bytes`, then reads the first line the target writes back, as JSON, and what followed it.
    func report(_ server: TargetServer, sending bytes: [UInt8]) throws -> (TestSocket, [String: Any], [UInt8]) {
        let client = try TestSocket.connect(to: server.endpoint, from: otherLoopback)
        try client.send(bytes)
        var received: [UInt8] = []
        while !received.contains(0x0A) {
            guard case .data(let more) = client.receive() else { throw TestFailure("no report line") }
            received += more
        }
        let line = received.prefix { $0 != 0x0A }
        let rest = Array(received[(line.count + 1)...])
        return (client, try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any], rest)
    }

    @Test func reportsAProxyV2HeaderAndTheClientInIt() throws {
        let server = try start(.optional)
        defer { server.stop() }
        let header = ProxyHeader.aws(
            source: IPEndpoint("198.51.100.22:35646")!, destination: IPEndpoint("203.0.113.7:80")!,
            vpcEndpointID: "vpce-0abc")
        let (client, json, echoed) = try report(server, sending: header.encoded() + Array("echo me".utf8))
        let proxy = json["proxy"] as! [String: Any]
        #expect(json["target"] as? String == "t1")
        #expect(json["peer"] as? String == client.local.description)
        #expect(json["local"] as? String == server.endpoint.description)
        #expect(json["clientAddress"] as? String == "198.51.100.22:35646")
        #expect(proxy["version"] as? Int == 2)
        #expect(proxy["command"] as? String == "PROXY")
        #expect(proxy["family"] as? String == "TCP4")
        #expect(proxy["destination"] as? String == "203.0.113.7:80")
        #expect(proxy["crc32c"] as? String == "valid")
        #expect(proxy["vpcEndpointId"] as? String == "vpce-0abc")
        #expect(proxy["length"] as? Int == 100)
        let names = (proxy["tlvs"] as! [[String: Any]]).map { $0["name"] as! String }
        #expect(names == ["PP2_TYPE_CRC32C", "PP2_TYPE_AWS", "PP2_TYPE_NOOP"])
        // After the report line, everything past the header is echoed.
        client.shutdownWrite()
        #expect(try echoed + client.receiveUntilEOF() == Array("echo me".utf8))
    }

    /// Spec §2.2.5: a header whose CRC32C does not match makes the connection invalid: closed,
    /// nothing reported or echoed.
    @Test func aChecksumMismatchClosesTheConnection() throws {
        let server = try start(.optional)
        defer { server.stop() }
        var bytes = ProxyHeader.aws(
            source: IPEndpoint("198.51.100.22:35646")!, destination: IPEndpoint("203.0.113.7:80")!,
            vpcEndpointID: nil
        ).encoded()
        bytes[31] ^= 0xFF  // inside the CRC32C TLV's value (16 fixed + 12 address + 3 TLV head)
        let client = try TestSocket.connect(to: server.endpoint)
        try client.send(bytes + Array("echo me".utf8))
        #expect(try client.receiveUntilEOF().isEmpty)
    }

    /// A header that never completes (a v1 line trickled without its CRLF) does not hold the
    /// connection past the header timeout.
    @Test func anIncompleteHeaderIsClosedAfterTheTimeout() throws {
        let server = try TargetServer(
            options: .init(
                listen: IPEndpoint(ip: loopback, port: 0), name: "t1", proxyMode: .optional,
                headerTimeoutSeconds: 0.3))
        server.start()
        defer { server.stop() }
        let client = try TestSocket.connect(to: server.endpoint, timeout: 5)
        try client.send("PROXY TCP4 192.0.2.1")
        Thread.sleep(forTimeInterval: 0.1)
        try client.send(" 192.0.2.2")
        #expect(client.receive() == .eof)
    }

    /// UNIX-family headers report their paths.
    @Test func reportsUnixAddresses() throws {
        let server = try start(.optional)
        defer { server.stop() }
        func path(_ text: String) -> [UInt8] { Array(text.utf8) + [UInt8](repeating: 0, count: 108 - text.utf8.count) }
        let header =
            [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x31, 0x00, 0xD8]
            + path("/run/client.sock") + path("/run/server.sock")
        let (_, json, _) = try report(server, sending: header + Array("x".utf8))
        let proxy = json["proxy"] as! [String: Any]
        #expect(proxy["family"] as? String == "UNIX")
        #expect(proxy["source"] as? String == "/run/client.sock")
        #expect(proxy["destination"] as? String == "/run/server.sock")
    }

    @Test func answersAnHTTPRequestWithTheReport() throws {
        let server = try start(.optional)
        defer { server.stop() }
        let client = try TestSocket.connect(to: server.endpoint)
        try client.send(Array("PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let response = String(decoding: try client.receiveUntilEOF(), as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"))
        #expect(response.contains(#""clientAddress":"192.0.2.1:1234""#))
        #expect(response.contains(#""version":1"#))
    }

    @Test func withoutAHeaderTheClientIsThePeer() throws {
        let server = try start(.optional)
        defer { server.stop() }
        let (client, json, _) = try report(server, sending: Array("hello\n".utf8))
        #expect(json["proxy"] is NSNull)
        #expect(json["clientAddress"] as? String == client.local.description)
    }

    @Test func requiredClosesAConnectionWithoutAHeader() throws {
        let server = try start(.required)
        defer { server.stop() }
        let client = try TestSocket.connect(to: server.endpoint)
        try client.send("hello\n")
        #expect(try client.receiveUntilEOF().isEmpty)
    }

    @Test func aMalformedHeaderClosesTheConnection() throws {
        let server = try start(.optional)
        defer { server.stop() }
        let client = try TestSocket.connect(to: server.endpoint)
        try client.send("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\nhello\n")
        #expect(try client.receiveUntilEOF().isEmpty)
    }

    @Test func offLeavesAHeaderAsData() throws {
        let server = try start(.off)
        defer { server.stop() }
        let line = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"
        let (client, json, echoed) = try report(server, sending: Array(line.utf8))
        #expect(json["proxy"] is NSNull)
        client.shutdownWrite()
        #expect(try echoed + client.receiveUntilEOF() == Array(line.utf8))
    }
}

@Suite(.serialized) struct ConnectTimeout {
    @Test func aTargetThatNeverAnswersMeansAResetAfterTheConnectTimeout() throws {
        // A listener with a full accept queue drops further SYNs: a target that does not answer.
        let silent = try Socket.listen(on: IPEndpoint(ip: loopback, port: 0), backlog: 0)
        defer { closeDescriptor(silent) }
        let endpoint = Socket.localEndpoint(silent)!
        let filler = try TestSocket.connect(to: endpoint)
        defer { filler.close() }
        var config = configuration(targets: [endpoint])
        config.listeners[0].connectTimeoutSeconds = 0.5
        let lb = try RunningBalancer(config)
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        #expect(client.receive() == .reset)
        #expect(try lb.endedFlows(count: 1)[0].closeReason == .connectTimeout)
    }
}

/// The hostile clients of the PROXY rule: a forged header straight to a target, and one through the balancer.
@Suite(.serialized) struct HostileClients {
    @Test func aForgedHeaderFromAnUntrustedPeerIsNotBelieved() throws {
        let server = try TargetServer(
            options: .init(
                listen: IPEndpoint(ip: loopback, port: 0), name: "t", proxyMode: .optional,
                trust: ProxyTrust(trusted: [CIDR("127.0.0.1/32")!])))
        server.start()
        defer { server.stop() }
        // Around the load balancer, from 127.0.0.5: not a trusted proxy.
        let client = try TestSocket.connect(to: server.endpoint, from: .v4(IPv4Address(127, 0, 0, 5)))
        try client.send("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\nGET / HTTP/1.0\r\n\r\n")
        let response = String(decoding: try client.receiveUntilEOF(), as: UTF8.self)
        let body = try #require(response.split(separator: "\r\n\r\n").last)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
        #expect(json["clientAddress"] as? String == client.local.description)
        #expect(json["proxy"] is NSNull)
        #expect((json["untrustedProxy"] as? [String: Any])?["source"] as? String == "1.2.3.4:1111")
        #expect(
            json["refused"] as? String
                == "peer 127.0.0.5 is not a trusted proxy (trusted: 127.0.0.1/32); its PROXY header is ignored")
    }

    @Test func aTrustedPeersHeaderIsBelieved() throws {
        let server = try TargetServer(
            options: .init(
                listen: IPEndpoint(ip: loopback, port: 0), name: "t", proxyMode: .optional,
                trust: ProxyTrust(trusted: [CIDR("127.0.0.0/30")!])))
        server.start()
        defer { server.stop() }
        let client = try TestSocket.connect(to: server.endpoint, from: .v4(IPv4Address(127, 0, 0, 2)))
        try client.send("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\nGET / HTTP/1.0\r\n\r\n")
        let response = String(decoding: try client.receiveUntilEOF(), as: UTF8.self)
        #expect(response.contains(#""clientAddress":"1.2.3.4:1111""#))
    }

    @Test func aForgedHeaderThroughTheBalancerArrivesAsDataAfterTheRealOne() throws {
        let server = try TestServer()
        let lb = try RunningBalancer(
            configuration(targets: [server.endpoint]) { $0.proxyProtocol = .v2(awsTLVs: true, vpcEndpointID: nil) })
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint(), from: otherLoopback)
        let forged = Array("PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n".utf8)
        try client.send(forged)
        let upstream = try server.accept()
        // docs/proxy-protocol.md §6: the client's own header is kept, so the target receives two headers.
        let real = ProxyHeader.aws(source: client.local, destination: lb.endpoint()).encoded()
        let received = try upstream.receive(exactly: real.count + forged.count)
        guard case .header(let first, let consumed) = try ProxyHeaderParser().parse(received) else {
            Issue.record("no header first")
            return
        }
        #expect(first.source == client.local)
        #expect(Array(received[consumed...]) == forged)
    }
}
