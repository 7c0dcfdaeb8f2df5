import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// `localnlb demo`: the Fargate client-IP problem (seed 001) and its two fixes, in one process.
public enum Demo {
    public struct Row: Sendable {
        public var targetType: TargetType
        public var preserveClientIP: Bool
        public var proxyProtocolV2: Bool
        public var peer: String
        public var proxySource: String?
        public var client: IPEndpoint
        public var udp = false
        /// Through a TLS listener (the listener terminates TLS; the target gets the plaintext).
        public var tls = false
        /// Through an application load balancer's HTTP listener, and the `X-Forwarded-For` the target got.
        public var alb = false
        public var forwardedFor: String?

        /// Whether the application behind the target can learn the client's address, and how.
        public var verdict: String {
            if let proxySource, proxySource == client.description { return "yes, from the PROXY v2 header" }
            if alb,
                forwardedFor?.split(separator: ",").last?.trimmingCharacters(in: .whitespaces)
                    == client.ip.description
            {
                return "yes, from X-Forwarded-For"
            }
            if peer.hasPrefix(client.ip.description + ":") {
                return udp ? "yes, it is the datagram's source" : "yes, it is the TCP peer"
            }
            return "no: it sees the load balancer's address"
        }
    }

    /// Target type, PROXY v2, TLS listener.
    static let modes: [(TargetType, Bool, Bool)] = [
        (.instance, false, false), (.ip, false, false), (.ip, true, false), (.ip, false, true), (.ip, true, true),
    ]
    /// The certificate the demo's TLS listeners name: issued by a certificate authority of the demo's own.
    static let certificateArn = "arn:aws:acm:us-east-1:000000000000:certificate/0000demo-0000-4000-8000-000000000000"

    /// Starts two targets and a load balancer with three listeners, sends one HTTP request through each
    /// from `clientAddress`, and returns what the targets saw.
    public static func run(clientAddress: IPAddress = .v4(IPv4Address(127, 0, 0, 2))) throws -> [Row] {
        let loopback = IPAddress.v4(IPv4Address(127, 0, 0, 1))
        let targets = try ["target-a", "target-b"].map {
            try TargetServer(options: .init(listen: IPEndpoint(ip: loopback, port: 0), name: $0, proxyMode: .optional))
        }
        targets.forEach { $0.start() }
        defer { targets.forEach { $0.stop() } }

        var groups: [TargetGroupConfiguration] = []
        var listeners: [ListenerConfiguration] = []
        for (type, proxy, tls) in modes {
            let name = "demo-\(type.rawValue)\(proxy ? "-pp2" : "")\(tls ? "-tls" : "")"
            var group = TargetGroupConfiguration(
                name: name, port: 80, targetType: type,
                targets: targets.map {
                    TargetConfiguration(id: $0.endpoint.ip.description, address: $0.endpoint.ip, port: $0.endpoint.port)
                })
            if proxy { group.proxyProtocol = .v2(awsTLVs: true, vpcEndpointID: nil) }
            groups.append(group)
            var listener = ListenerConfiguration(loadBalancerName: "demo-nlb", port: 0, targetGroupName: name)
            if tls {
                listener.protocolName = .tls
                listener.certificateArns = [certificateArn]
            }
            listeners.append(listener)
        }
        // UDP (docs/flows.md §10): the client's address is always kept.
        let udpTarget = try UDPTargetServer(on: IPEndpoint(ip: loopback, port: 0), name: "target-udp")
        udpTarget.start()
        defer { udpTarget.stop() }
        var udpGroup = TargetGroupConfiguration(
            name: "demo-udp", port: 80, targetType: .ip,
            targets: [
                TargetConfiguration(id: loopback.description, address: loopback, port: udpTarget.endpoint.port)
            ])
        udpGroup.protocolName = .udp
        udpGroup.preserveClientIP = true
        udpGroup.healthCheck.enabled = false
        var udpListener = ListenerConfiguration(loadBalancerName: "demo-nlb", port: 0, targetGroupName: "demo-udp")
        udpListener.protocolName = .udp
        var configuration = Configuration(
            loadBalancerName: "demo-nlb", nodes: [LoadBalancerNode(subnetID: "subnet-demo", ipv4: loopback)],
            listeners: listeners + [udpListener], targetGroups: groups + [udpGroup])
        // An application load balancer beside it (docs/alb.md §16): the client arrives in X-Forwarded-For.
        var alb = LoadBalancerConfiguration(
            name: "demo-alb", nodes: [LoadBalancerNode(subnetID: "subnet-demo", ipv4: loopback)])
        alb.type = .application
        var albGroup = TargetGroupConfiguration(
            name: "demo-alb", port: 80, targetType: .ip,
            targets: targets.map {
                TargetConfiguration(id: $0.endpoint.ip.description, address: $0.endpoint.ip, port: $0.endpoint.port)
            })
        albGroup.setProtocol(.http)
        albGroup.healthCheck = .application
        var albListener = ListenerConfiguration(loadBalancerName: "demo-alb", port: 0, targetGroupName: "demo-alb")
        albListener.protocolName = .http
        configuration.loadBalancers.append(alb)
        configuration.listeners.append(albListener)
        configuration.targetGroups.append(albGroup)
        // The demo's certificate authority lives and dies with it: the user's own (localnlb ca) is untouched.
        let authority = FileManager.default.temporaryDirectory.appendingPathComponent("localnlb-demo-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: authority) }
        return try running(configuration, certificateDirectory: authority) { balancer in
            try rows(
                of: balancer, groups, clientAddress, tls: Set(modes.indices.filter { modes[$0].2 }),
                authority: authority + "/ca.pem")
        }
    }

    /// A demo's load balancer, quiet (its output is the demo's table; the event log would bury it),
    /// running on a thread of its own while `body` runs, then stopped.
    package static func running<T>(
        _ configuration: Configuration, timeScale: Double = 1, certificateDirectory: String? = nil,
        _ body: (LoadBalancer) throws -> T
    ) throws -> T {
        var options = LoadBalancerOptions()
        options.certificateDirectory = certificateDirectory
        options.flowLog = .disabled
        options.log = { _ in }
        options.drainSeconds = 1
        options.timeScale = timeScale
        let balancer = try LoadBalancer(configuration: configuration, options: options)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? balancer.run()
            done.signal()
        }
        defer {
            balancer.stop()
            done.wait()
        }
        return try body(balancer)
    }

    /// What each listener's target saw of one request from `clientAddress`.
    package static func rows(
        of balancer: LoadBalancer, _ groups: [TargetGroupConfiguration], _ clientAddress: IPAddress,
        tls: Set<Int> = [], authority: String = ""
    )
        throws -> [Row]
    {
        var rows: [Row] = []
        for (listenerIndex, endpoint) in balancer.listenerEndpoints where listenerIndex < groups.count {
            let group = groups[listenerIndex]
            let overTLS = tls.contains(listenerIndex)
            let (client, body) = try httpGet(
                endpoint, from: clientAddress, tls: overTLS ? (authority, endpoint.ip.description) : nil)
            let report = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
            let proxy = report["proxy"] as? [String: Any]
            rows.append(
                Row(
                    targetType: group.targetType, preserveClientIP: group.preserveClientIP,
                    proxyProtocolV2: group.proxyProtocol != .off, peer: report["peer"] as? String ?? "?",
                    proxySource: proxy?["source"] as? String, client: client, tls: overTLS))
        }
        // The application load balancer's listener comes after the network one's (TCP, TLS, UDP).
        for (listenerIndex, endpoint) in balancer.listenerEndpoints where listenerIndex == groups.count + 1 {
            let (client, body) = try httpGet(endpoint, from: clientAddress)
            let report = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
            var row = Row(
                targetType: .ip, preserveClientIP: false, proxyProtocolV2: false,
                peer: report["peer"] as? String ?? "?",
                proxySource: nil, client: client)
            row.alb = true
            row.forwardedFor = report["xForwardedFor"] as? String
            rows.append(row)
        }
        if let endpoint = balancer.udpListenerEndpoints.first?.endpoint {
            let (client, body) = try datagram(to: endpoint, from: clientAddress)
            let report = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
            var row = Row(
                targetType: .ip, preserveClientIP: true, proxyProtocolV2: false, peer: report["peer"] as? String ?? "?",
                proxySource: nil, client: client)
            row.udp = true
            rows.append(row)
        }
        return rows
    }

    /// One datagram from `source` to `endpoint` and its answer; returns the client's own endpoint too.
    package static func datagram(to endpoint: IPEndpoint, from source: IPAddress) throws -> (IPEndpoint, String) {
        let fd = try Socket.datagram(on: IPEndpoint(ip: source, port: 0))
        defer { closeDescriptor(fd) }
        let local = Socket.localEndpoint(fd) ?? IPEndpoint(ip: source, port: 0)
        for _ in 0..<3 {
            Socket.sendDatagram(fd, Array("demo".utf8), to: endpoint)
            if Socket.waitReadable(fd, milliseconds: 1000) {
                var buffer = [UInt8](repeating: 0, count: 65536)
                if let (count, _) = Socket.receiveDatagram(fd, into: &buffer) {
                    return (local, String(decoding: buffer[0..<count], as: UTF8.self))
                }
            }
        }
        throw ListenerError(description: "demo: no UDP answer through \(endpoint)")
    }

    /// The demo's table and what it means.
    public static func render(_ rows: [Row]) -> String {
        let header = [
            "TargetType", "preserve_client_ip", "proxy_protocol_v2", "peer the target saw",
            "PROXY header source", "X-Forwarded-For", "app knows the client IP?",
        ]
        let cells = rows.map {
            [
                $0.targetType.rawValue + ($0.udp ? " (UDP)" : "") + ($0.tls ? " (TLS)" : "") + ($0.alb ? " (ALB)" : ""),
                String($0.preserveClientIP),
                String($0.proxyProtocolV2), $0.peer, $0.proxySource ?? "-", $0.forwardedFor ?? "-", $0.verdict,
            ]
        }
        let widths = header.indices.map { column in
            ([header[column]] + cells.map { $0[column] }).map(\.count).max() ?? 0
        }
        func line(_ values: [String]) -> String {
            values.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var out =
            "Client \(rows.first?.client.ip.description ?? "?") → LocalNLB node 127.0.0.1 → targets on 127.0.0.1\n\n"
        out += line(header) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        out += cells.map(line).joined(separator: "\n") + "\n\n"
        out += """
            instance: the NLB keeps the client's address as the TCP source; the app sees the client.
            ip (what ECS on Fargate creates): the source is the NLB node, so the app logs the NLB's IP.
            ip + proxy_protocol_v2.enabled: still the NLB as peer, but the client's address and port arrive
              in a PROXY v2 header first; a target that parses it (nginx: listen … proxy_protocol;
              real_ip_header proxy_protocol) knows the client again.
            ip (UDP): NLB always keeps the client's address for UDP; each datagram comes from the client.
            ip (TLS): a TLS listener terminates TLS with its certificate (here from localnlb's own CA); the
              target gets the plaintext from the NLB, and the client's address only in a PROXY v2 header.
            ip (ALB): an application load balancer ends the connection and sends the request on itself: the
              peer is its node, the client is in X-Forwarded-For (nginx: real_ip_header X-Forwarded-For).

            """
        return out
    }

    /// One HTTP GET from a socket bound to `source`; returns the client's own endpoint and the body.
    static func httpGet(
        _ endpoint: IPEndpoint, from source: IPAddress, tls: (authority: String, serverName: String)? = nil
    ) throws -> (IPEndpoint, String) {
        let request = Array("GET / HTTP/1.1\r\nHost: \(endpoint)\r\nConnection: close\r\n\r\n".utf8)
        do {
            let (local, _, body) = try BlockingConnection.exchange(
                request, with: endpoint, from: source, timeoutSeconds: 5, tls: tls)
            return (local, body)
        } catch {
            throw ListenerError(description: "demo: no HTTP response through \(endpoint) (\(error))")
        }
    }
}
