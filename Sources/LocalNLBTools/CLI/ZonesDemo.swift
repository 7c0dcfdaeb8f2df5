import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// `localnlb demo zones`: two Availability Zones on loopback, cross-zone load balancing off and on, a
/// zone losing its target: where flows land and what the load balancer's name resolves to at each step.
public enum ZonesDemo {
    static let zoneA = IPAddress.v4(IPv4Address(127, 0, 1, 1))
    static let zoneB = IPAddress.v4(IPv4Address(127, 0, 2, 1))

    public static func run() throws -> String {
        let targets = try [("a", IPv4Address(127, 0, 1, 10)), ("b", IPv4Address(127, 0, 2, 10))].map { name, ip in
            try TargetServer(options: .init(listen: IPEndpoint(ip: .v4(ip), port: 0), name: name, proxyMode: .off))
        }
        targets.forEach { $0.start() }
        defer { targets.forEach { $0.stop() } }

        var group = TargetGroupConfiguration(
            name: "web", port: 80, targetType: .ip,
            targets: targets.map {
                TargetConfiguration(id: $0.endpoint.ip.description, address: $0.endpoint.ip, port: $0.endpoint.port)
            })
        group.healthCheck.intervalSeconds = 5
        group.healthCheck.healthyThreshold = 2
        var configuration = Configuration(
            loadBalancerName: "zones-demo",
            nodes: [
                LoadBalancerNode(subnetID: "subnet-a", ipv4: zoneA),
                LoadBalancerNode(subnetID: "subnet-b", ipv4: zoneB),
            ],
            listeners: [ListenerConfiguration(loadBalancerName: "zones-demo", port: 0, targetGroupName: "web")],
            targetGroups: [group],
            admin: AdminConfiguration(address: IPEndpoint(ip: .v4(IPv4Address(127, 0, 0, 1)), port: 0)))
        configuration.subnets = [
            SubnetConfiguration(subnetID: "subnet-a", availabilityZone: "us-east-1a", cidr: CIDR("127.0.1.0/24")),
            SubnetConfiguration(subnetID: "subnet-b", availabilityZone: "us-east-1b", cidr: CIDR("127.0.2.0/24")),
        ]
        configuration.dns = DNSConfiguration(
            address: IPEndpoint(ip: .v4(IPv4Address(127, 0, 0, 1)), port: 0), explicit: true)
        // A check every 0.1 s: zones turn unhealthy within a second.
        return try Demo.running(configuration, timeScale: 0.02) { balancer in try steps(balancer, targets) }
    }

    /// The demo's steps on a running balancer; `targets`: a and b.
    static func steps(_ balancer: LoadBalancer, _ targets: [TargetServer]) throws -> String {
        guard let admin = balancer.adminEndpoint, let dns = balancer.dnsEndpoint else {
            throw ListenerError(description: "demo zones: the control API or the DNS responder did not start")
        }
        let nodes = [zoneA, zoneB].map { ip in balancer.listenerEndpoints.first { $0.endpoint.ip == ip }!.endpoint }
        let name = ResourceNames(region: "us-east-1", accountID: "000000000000").dnsName("zones-demo")
        func ctl(_ arguments: [String]) {
            _ = ControlCommand.run(arguments + ["--endpoint-url", "http://\(admin)"], environment: [:])
        }
        let lbARN = ResourceNames(region: "us-east-1", accountID: "000000000000").loadBalancer("zones-demo")
        func crossZone(_ on: Bool) {
            ctl([
                "modify-load-balancer-attributes", "--load-balancer-arn", lbARN, "--attributes",
                "Key=load_balancing.cross_zone.enabled,Value=\(on)",
            ])
        }

        var rows: [[String]] = []
        func step(_ title: String) {
            let landed = nodes.map { node in (0..<4).map { _ in landedOn(node) }.joined(separator: " ") }
            rows.append([title] + landed + [resolve(name, at: dns)])
        }
        // Healthy first: both targets pass their checks.
        waitFor { resolve(name, at: dns) == "127.0.1.1 127.0.2.1" }
        step("cross-zone off (NLB's default)")
        crossZone(true)
        step("cross-zone on")
        crossZone(false)
        targets[0].stop()
        waitFor { resolve(name, at: dns) == "127.0.2.1" }
        step("off; target a stops: zone a unhealthy")
        crossZone(true)
        waitFor { resolve(name, at: dns) == "127.0.1.1 127.0.2.1" }
        step("on again: b serves zone a too")
        targets[1].stop()
        waitFor { landedOn(nodes[1]) == "RST" }
        step("target b stops too: none healthy")
        return render(rows)
    }

    /// The target one request through `node` reached, or what the client got instead.
    static func landedOn(_ node: IPEndpoint) -> String {
        let request = Array("GET / HTTP/1.1\r\nHost: \(node)\r\nConnection: close\r\n\r\n".utf8)
        guard let (_, _, body) = try? BlockingConnection.exchange(request, with: node, timeoutSeconds: 5),
            let report = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let target = report["target"] as? String
        else { return "RST" }
        return target
    }

    /// The A records of `name`, sorted, from the responder at `dns`.
    package static func resolve(_ name: String, at dns: IPEndpoint) -> String {
        var query: [UInt8] = [0x4C, 0x4E, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") { query += [UInt8(label.utf8.count)] + Array(label.utf8) }
        query += [0, 0, 1, 0, 1]
        guard let answer = Socket.exchangeDatagram(query, with: dns, timeoutSeconds: 2), answer.count >= 12 else {
            return "(no answer)"
        }
        let count = Int(answer[6]) << 8 | Int(answer[7])
        var addresses: [String] = []
        var offset = query.count
        for _ in 0..<count where offset + 16 <= answer.count {
            addresses.append(answer[(offset + 12)..<(offset + 16)].map(String.init).joined(separator: "."))
            offset += 16
        }
        return addresses.sorted().joined(separator: " ")
    }

    /// Polls `condition` for up to 20 s: a loaded machine (a CI run beside other builds) can take seconds
    /// to run the checks that a quiet one runs in a tenth of that.
    static func waitFor(_ condition: () -> Bool) {
        for _ in 0..<400 {
            if condition() { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    package static func render(_ rows: [[String]]) -> String {
        let header = ["step", "4 requests via node 127.0.1.1", "via node 127.0.2.1", "the name resolves to"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ values: [String]) -> String {
            values.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var out = """
            Two zones on loopback: us-east-1a (127.0.1.0/24: node 127.0.1.1, target a on 127.0.1.10) and
            us-east-1b (127.0.2.0/24: node 127.0.2.1, target b on 127.0.2.10); targets are TCP-checked.


            """
        out += line(header) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        out += rows.map(line).joined(separator: "\n") + "\n\n"
        out += """
            cross-zone off: each node sends flows only to its own zone's targets, NLB's default. "Why does my
              target in us-east-1b get no traffic?" Because its clients resolved (or cached) the other node.
            cross-zone on (load_balancing.cross_zone.enabled): every node spreads over every zone.
            off, with zone a's only target gone: zone a leaves DNS ("why does my NLB resolve to one IP?").
              Clients that kept its address still reach its node, which fails open to its own unhealthy
              target: they get resets.
            on again: zone a is healthy for DNS while any zone has a healthy target, and its node sends to b.
            no target healthy anywhere: DNS fails open to every node; every flow is reset.

            """
        return out
    }
}
