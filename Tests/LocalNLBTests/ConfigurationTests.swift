import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

func load(_ json: String, strict: Bool = false) throws -> LoadedConfiguration {
    try ConfigLoader.load(data: Data(json.utf8), strict: strict)
}

/// The problems a document produces (empty when it loads).
func problems(_ json: String, strict: Bool = false) -> [String] {
    do {
        _ = try load(json, strict: strict)
        return []
    } catch let error as ConfigurationError {
        return error.problems
    } catch {
        return ["\(error)"]
    }
}

/// A valid document with one target group whose attributes and extra properties are given.
func document(group extra: String = "", attributes: String = "", listenerAttributes: String = "") -> String {
    """
    {
      "LoadBalancer": { "Name": "demo-nlb", "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.0.1" } ] },
      "Listeners": [ { "Port": 8081, "Protocol": "TCP",
        "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ],
        "ListenerAttributes": [ \(listenerAttributes) ] } ],
      "TargetGroups": [ { "Name": "web", "Protocol": "TCP", "Port": 80, "TargetType": "ip" \(extra),
        "TargetGroupAttributes": [ \(attributes) ],
        "Targets": [ { "Id": "127.0.0.1", "Port": 9001 }, { "Id": "127.0.0.1" } ] } ]
    }
    """
}

@Suite struct ConfigurationLoading {
    @Test func theIssueExampleLoads() throws {
        let loaded = try load(
            document(
                attributes: #"{ "Key": "proxy_protocol_v2.enabled", "Value": "true" }"#,
                listenerAttributes: #"{ "Key": "tcp.idle_timeout.seconds", "Value": "350" }"#))
        let group = loaded.configuration.targetGroups[0]
        #expect(loaded.warnings.isEmpty)
        #expect(group.proxyProtocol == .v2(awsTLVs: true, vpcEndpointID: nil))
        #expect(group.targets.map(\.port) == [9001, 80])  // a target's Port defaults to the group's
        #expect(loaded.configuration.listeners[0].idleTimeoutSeconds == 350)
        #expect(
            loaded.configuration.loadBalancers[0].nodes == [
                LoadBalancerNode(subnetID: "subnet-a", ipv4: .v4(IPv4Address(127, 0, 0, 1)))
            ]
        )
    }

    @Test func awsDefaultsPerTargetType() throws {
        let ip = try load(document()).configuration.targetGroups[0]
        #expect(ip.preserveClientIP == false)
        #expect(ip.proxyProtocol == .off)
        #expect(ip.headerPlacement == .onFirstAckWithPayload)
        #expect(ip.deregistrationDelaySeconds == 300)
        #expect(ip.unhealthyConnectionTermination == true)
        #expect(ip.algorithm == .leastConnections)
        #expect(ip.healthCheck.intervalSeconds == 30 && ip.healthCheck.timeoutSeconds == 10)
        #expect(ip.healthCheck.healthyThreshold == 5 && ip.healthCheck.unhealthyThreshold == 2)
        let instance = try load(
            document().replacingOccurrences(of: #""TargetType": "ip""#, with: #""TargetType": "instance""#)
        )
        .configuration.targetGroups[0]
        #expect(instance.preserveClientIP == true)
        let http = try load(document(group: #", "HealthCheckProtocol": "HTTP""#)).configuration.targetGroups[0]
        #expect(http.healthCheck.timeoutSeconds == 6)
        let listener = try load(document()).configuration.listeners[0]
        #expect(listener.idleTimeoutSeconds == 350 && listener.connectTimeoutSeconds == 10)
    }

    @Test func withoutALoadBalancerThereIsOneNodeOnLoopback() throws {
        let json = """
            { "Listeners": [ { "Port": 8081, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
              "TargetGroups": [ { "Name": "web", "Port": 80, "Targets": [ { "Id": "127.0.0.1" } ] } ] }
            """
        let configuration = try load(json).configuration
        #expect(configuration.loadBalancers[0].nodes.map(\.addresses) == [[.v4(IPv4Address(127, 0, 0, 1))]])
        #expect(configuration.targetGroups[0].targetType == .instance)
    }

    @Test func attributeValuesMayBeJSONBooleansAndNumbers() throws {
        let group = try load(
            document(
                attributes: """
                    { "Key": "preserve_client_ip.enabled", "Value": true },
                    { "Key": "deregistration_delay.timeout_seconds", "Value": 30 }
                    """)
        ).configuration.targetGroups[0]
        #expect(group.preserveClientIP == true)
        #expect(group.deregistrationDelaySeconds == 30)
    }

    @Test func instanceIdsNeedTheirAddress() throws {
        let json = document().replacingOccurrences(of: #""TargetType": "ip""#, with: #""TargetType": "instance""#)
            .replacingOccurrences(
                of: #"{ "Id": "127.0.0.1" }"#,
                with: #"{ "Id": "i-0123456789abcdef0", "PrivateIpAddress": "127.0.0.3" }"#)
        let target = try load(json).configuration.targetGroups[0].targets[1]
        #expect(target.id == "i-0123456789abcdef0")
        #expect(target.endpoint == IPEndpoint("127.0.0.3:80"))
        let missing = json.replacingOccurrences(of: #", "PrivateIpAddress": "127.0.0.3""#, with: "")
        #expect(
            problems(missing) == [
                "TargetGroups[0].Targets[1].Id: instance i-0123456789abcdef0 is not known: declare it in Instances "
                    + "(InstanceId, PrivateIpAddress), with PUT /instances/i-0123456789abcdef0, or give the target a "
                    + "PrivateIpAddress"
            ])
    }

    @Test func localnlbExtensions() throws {
        let group = try load(
            document(
                attributes: """
                    { "Key": "proxy_protocol_v2.enabled", "Value": "true" },
                    { "Key": "localnlb.proxy_protocol_v2.tlvs", "Value": "none" },
                    { "Key": "localnlb.load_balancing.algorithm.type", "Value": "flow_hash" },
                    { "Key": "proxy_protocol_v2.client_to_server.header_placement", "Value": "on_first_ack" }
                    """,
                listenerAttributes: #"{ "Key": "localnlb.connect_timeout.seconds", "Value": "2.5" }"#)
        )
        let tg = group.configuration.targetGroups[0]
        #expect(tg.proxyProtocol == .v2(awsTLVs: false, vpcEndpointID: nil))
        #expect(tg.algorithm == .flowHash)
        #expect(tg.headerPlacement == .onFirstAck)
        #expect(group.configuration.listeners[0].connectTimeoutSeconds == 2.5)
    }
}

/// Every error class names its JSON path, and every problem is listed, not only the first.
@Suite struct ConfigurationErrors {
    @Test func theIssueExampleError() {
        #expect(
            problems(document(attributes: #"{ "Key": "proxy_protocol_v2.enabled", "Value": "yes" }"#)) == [
                #"TargetGroups[0].TargetGroupAttributes["proxy_protocol_v2.enabled"]: "yes" is not true or false"#
            ])
    }

    @Test func everyProblemIsListed() {
        let json = document(
            group: #", "HealthCheckProtocol": "UDP", "Colour": "blue""#,
            attributes: """
                { "Key": "proxy_protocol_v2.enabled", "Value": "yes" },
                { "Key": "stickiness.type", "Value": "lb_cookie" },
                { "Key": "made_up.attribute", "Value": "1" }
                """
        ).replacingOccurrences(of: #""Port": 9001"#, with: #""Port": 70000"#)
        #expect(
            problems(json) == [
                "TargetGroups[0].Colour: unknown key (known here: Name, Protocol, Port, TargetType, VpcId, IpAddressType, "
                    + "Targets, TargetGroupAttributes, HealthCheckEnabled, HealthCheckProtocol, HealthCheckPort, "
                    + "HealthCheckPath, HealthCheckIntervalSeconds, HealthCheckTimeoutSeconds, HealthyThresholdCount, "
                    + "UnhealthyThresholdCount, Matcher, Tags)",
                #"TargetGroups[0].HealthCheckProtocol: "UDP": health checks use TCP, HTTP or HTTPS, never UDP (a UDP group is checked over TCP)"#,
                #"TargetGroups[0].TargetGroupAttributes["proxy_protocol_v2.enabled"]: "yes" is not true or false"#,
                #"TargetGroups[0].TargetGroupAttributes["stickiness.type"]: "lb_cookie" is for Application Load Balancers; a Network Load Balancer has source_ip"#,
                #"TargetGroups[0].TargetGroupAttributes["made_up.attribute"]: not a network load balancer's target group attribute"#,
                "TargetGroups[0].Targets[0].Port: 70000 is not a port (1-65535)",
            ])
    }

    @Test func wrongTypes() {
        let json = document().replacingOccurrences(of: #""Port": 8081"#, with: #""Port": "eighty""#)
            .replacingOccurrences(of: #""Name": "demo-nlb""#, with: #""Name": 7"#)
        #expect(
            problems(json) == [
                "LoadBalancer.Name: 7 is not a string",
                #"Listeners[0].Port: "eighty" is not a whole number"#,
            ])
    }

    @Test func impossibleValues() {
        #expect(
            problems(
                document().replacingOccurrences(of: #""Id": "127.0.0.1", "Port""#, with: #""Id": "localhost", "Port""#))
                == [
                    #"TargetGroups[0].Targets[0].Id: "localhost" is not an IPv4 or IPv6 address (host names are not resolved)"#
                ])
        #expect(
            problems(document(listenerAttributes: #"{ "Key": "tcp.idle_timeout.seconds", "Value": "-1" }"#)) == [
                #"Listeners[0].ListenerAttributes["tcp.idle_timeout.seconds"]: "-1" is out of range (1-86400)"#
            ])
        #expect(
            problems(
                document().replacingOccurrences(of: #""TargetGroupName": "web""#, with: #""TargetGroupName": "api""#))
                == [
                    #"Listeners[0].DefaultActions[0]: target group "api" is not in TargetGroups"#
                ])
    }

    @Test func bothProxyProtocolVersionsIsAnError() {
        let errors = problems(
            document(
                attributes: """
                    { "Key": "proxy_protocol_v2.enabled", "Value": "true" },
                    { "Key": "localnlb.proxy_protocol_v1.enabled", "Value": "true" }
                    """))
        #expect(
            errors == [
                #"TargetGroups[0].TargetGroupAttributes["localnlb.proxy_protocol_v1.enabled"]: true together with proxy_protocol_v2.enabled: a target group sends one PROXY header; turn one off"#
            ])
    }

    /// A TLS listener and a TLS group load; what the listener lacks is named.
    @Test func unsupportedProtocolsAreNamed() {
        let json = document().replacingOccurrences(of: #""Protocol": "TCP","#, with: #""Protocol": "TLS","#)
        #expect(
            problems(json) == [
                #"Listeners[0].Certificates: missing: a TLS listener needs a certificate ([{"CertificateArn": "arn:aws:acm:…"}]; an ARN nobody imported is issued by localnlb's own certificate authority)"#
            ])
    }

    @Test func notJSONAtAll() {
        #expect(problems("{ not json") == [#"configuration: not valid JSON: line 1, column 3: expected a "key""#])
    }

    /// A syntax error names the file, line and column; the column counts characters, not bytes.
    @Test func syntaxErrorsNameFileLineAndColumn() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("localnlb-\(getpid())-syntax.json")
        try Data("{\n  \"Listeners\": [\n    { \"Port\": 8081 \"x\" }\n".utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        #expect(throws: ConfigurationError.self) { try ConfigLoader.load(path: path.path) }
        do { _ = try ConfigLoader.load(path: path.path) } catch let error as ConfigurationError {
            #expect(
                error.problems == ["\(path.path): not valid JSON: line 3, column 20: expected ',' or '}' after a value"]
            )
        }
        #expect(
            problems("{\"é\": tru }") == [
                "configuration: not valid JSON: line 1, column 7: unexpected 't' where a value should be"
            ])
    }

    @Test func trailingCommasAreErrors() {
        #expect(
            problems(#"{"Listeners": [1, 2, ]}"#) == [
                "configuration: not valid JSON: line 1, column 22: a comma before ']' (trailing commas are not JSON)"
            ])
        #expect(
            problems(#"{"Listeners": [], }"#) == [
                "configuration: not valid JSON: line 1, column 19: a comma before '}' (trailing commas are not JSON)"
            ])
    }

    /// A decoder keeps one of two equal keys silently; here the second is an error with its path.
    @Test func aKeyGivenTwiceIsAnError() {
        let json = document().replacingOccurrences(of: #""Port": 9001"#, with: #""Port": 9001, "Port": 9002"#)
        #expect(problems(json) == ["TargetGroups[0].Targets[0].Port: given twice in one object (remove one)"])
    }

    /// A load balancer without listeners or target groups is valid (the ELBv2 API adds them); so is a
    /// file with only `Admin`, and an empty one, which is what `serve` without `--config` runs: a host
    /// with no load balancer yet.
    @Test func anEmptyLoadBalancerIsValid() throws {
        #expect(problems(#"{"Admin": {"Address": "127.0.0.1:0"}}"#).isEmpty)
        let empty = try load("{}").configuration
        #expect(empty.listeners.isEmpty && empty.targetGroups.isEmpty && empty.loadBalancers.isEmpty)
        #expect(empty.admin == AdminConfiguration())
    }

    @Test func theRootIsNamed() {
        #expect(problems("[1]") == ["(root): a list is not an object"])
    }

    /// A duplicate group name, a forward to a missing group and a reused port: one run reports all three.
    @Test func crossReferenceProblemsComeInOnePass() {
        let json = """
            { "Listeners": [
                { "Port": 8081, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] },
                { "Port": 8081, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] },
                { "Port": 8082, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "missing" } ] } ],
              "TargetGroups": [
                { "Name": "web", "Port": 80, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
                { "Name": "web", "Port": 80, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1", "Port": 0 } ] } ] }
            """
        #expect(
            problems(json) == [
                #"TargetGroups[1].Name: "web" is used by another target group"#,
                "TargetGroups[1].Targets[0].Port: 0 is not a port (1-65535)",
                "Listeners[1].Port: 8081 is used by another listener of localnlb",
                #"Listeners[2].DefaultActions[0]: target group "missing" is not in TargetGroups"#,
            ])
    }

    /// Escapes, unicode and numbers as RFC 8259 writes them.
    @Test func stringsAndNumbersDecode() throws {
        // (A target group's name may hold only letters, digits and hyphens: the escapes are read alone.)
        let (decoded, _) = try JSONParser.parse(Array(#"{"Name": "w\u00e9b\ud83d\ude00\"\\"}"#.utf8))
        guard case .object(let fields) = decoded, case .string(let name)? = fields["Name"] else {
            throw TestFailure("not an object with a string")
        }
        #expect(name == "wéb😀\"\\")
        let loaded = try load(
            document(attributes: #"{ "Key": "deregistration_delay.timeout_seconds", "Value": 3e1 }"#))
        #expect(loaded.configuration.targetGroups[0].deregistrationDelaySeconds == 30)
        #expect(problems("{\"a\": 01}").first?.hasSuffix("a number with a leading zero") == true)
        #expect(problems("{\"a\": \"\\x\"}").first?.hasSuffix("\\x is not a JSON escape") == true)
    }

    @Test func ipv6TargetNeedsAnIPv6Node() {
        let json = document().replacingOccurrences(of: #"{ "Id": "127.0.0.1" }"#, with: #"{ "Id": "::1" }"#)
        #expect(
            problems(json) == [
                "TargetGroups[0].Targets[1]: [::1]:80 is IPv6 but no SubnetMapping has an IPv6Address to reach it from"
            ])
    }

    @Test func valuesAWSWouldRejectAreWarningsOrStrictErrors() throws {
        let json = document(
            attributes: #"{ "Key": "deregistration_delay.timeout_seconds", "Value": "5000" }"#,
            listenerAttributes: #"{ "Key": "tcp.idle_timeout.seconds", "Value": "5" }"#)
        let loaded = try load(json)
        #expect(
            loaded.warnings == [
                #"TargetGroups[0].TargetGroupAttributes["deregistration_delay.timeout_seconds"]: "5000" is outside AWS's range 0-3600; AWS would reject it"#,
                #"Listeners[0].ListenerAttributes["tcp.idle_timeout.seconds"]: "5" is outside AWS's range 60-6000; AWS would reject it"#,
            ])
        #expect(loaded.configuration.listeners[0].idleTimeoutSeconds == 5)
        #expect(problems(json, strict: true).count == 2)
        #expect(problems(json, strict: true).allSatisfy { $0.hasSuffix("(an error under --strict)") })
    }
}

@Suite struct TargetSelection {
    let key = FlowKey(client: IPEndpoint("127.0.0.2:40000")!, node: IPEndpoint("127.0.0.1:8081")!)

    func targets(_ active: [Int]) -> [Target] {
        active.enumerated().map { index, flows in
            let target = Target(
                id: "t\(index)", endpoint: IPEndpoint(ip: .v4(IPv4Address(127, 0, 0, 1)), port: UInt16(9000 + index)))
            target.activeFlows = flows
            return target
        }
    }

    @Test func leastConnectionsPicksTheLeastLoaded() {
        let selector = TargetSelector()
        let algorithm = LoadBalancingAlgorithm.leastConnections
        #expect(selector.pick(from: targets([3, 1, 2]), for: key, using: algorithm) == 1)
    }

    @Test func leastConnectionsBreaksTiesRoundRobin() {
        let selector = TargetSelector()
        let algorithm = LoadBalancingAlgorithm.leastConnections
        let equal = targets([0, 0, 0])
        #expect((0..<6).map { _ in selector.pick(from: equal, for: key, using: algorithm)! } == [0, 1, 2, 0, 1, 2])
    }

    @Test func onlyTargetsTakingNewFlowsArePicked() {
        let selector = TargetSelector()
        let algorithm = LoadBalancingAlgorithm.leastConnections
        var list = targets([5, 0, 9])
        list[1].takesNewFlows = false
        #expect(selector.pick(from: list, for: key, using: algorithm) == 0)
        list[0].takesNewFlows = false
        list[2].takesNewFlows = false
        #expect(selector.pick(from: list, for: key, using: algorithm) == nil)
        #expect(selector.pick(from: [Target](), for: key, using: algorithm) == nil)
    }

    @Test func roundRobinRotates() {
        let selector = TargetSelector()
        let algorithm = LoadBalancingAlgorithm.roundRobin
        let list = targets([9, 0, 0])
        #expect((0..<4).map { _ in selector.pick(from: list, for: key, using: algorithm)! } == [0, 1, 2, 0])
    }

    @Test func flowHashIsStablePerFlowAndSpreadsFlows() {
        let selector = TargetSelector()
        let algorithm = LoadBalancingAlgorithm.flowHash
        let list = targets([0, 0, 0, 0])
        let first = selector.pick(from: list, for: key, using: algorithm)
        #expect((0..<5).allSatisfy { _ in selector.pick(from: list, for: key, using: algorithm) == first })
        var seen = Set<Int>()
        for port in 40000..<40064 {
            seen.insert(
                selector.pick(
                    from: list, for: FlowKey(client: IPEndpoint(ip: key.client.ip, port: UInt16(port)), node: key.node),
                    using: algorithm)!
            )
        }
        #expect(seen.count == 4)
    }
}
