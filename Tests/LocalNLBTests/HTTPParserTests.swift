import Foundation
import Testing

@testable import LocalNLBDataPlane
@testable import LocalNLBModel

/// The application load balancer's HTTP/1.x reader: heads found in place, framing, connection
/// semantics, and http_desync_guardian's classes for requests.
@Suite struct HTTPHeads {
    func request(_ text: String) -> (HeadParse, HTTPHead) {
        var head = HTTPHead()
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { HTTPParser.parseRequest($0, into: &head) }
        return (result, head)
    }

    func response(_ text: String, head isHEAD: Bool = false) -> (HeadParse, HTTPHead) {
        var head = HTTPHead()
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { HTTPParser.parseResponse($0, into: &head, requestMethodIsHEAD: isHEAD) }
        return (result, head)
    }

    func isComplete(_ result: HeadParse) -> Bool {
        if case .complete = result { return true }
        return false
    }

    func malformedReason(_ result: HeadParse) -> String? {
        if case .malformed(let reason) = result { return "\(reason)" }
        return nil
    }

    @Test func aRequestHeadIsFoundInPlace() {
        let text =
            "POST /up?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nhello"
        let (result, head) = request(text)
        #expect(isComplete(result))
        #expect(head.length == text.utf8.count - 5)
        #expect(head.methodEnd == 4 && head.minorVersion == 1 && !head.closes)
        let bytes = Array(text.utf8)
        #expect(String(decoding: bytes[head.targetStart..<head.targetEnd], as: UTF8.self) == "/up?x=1")
        #expect(head.framing == .length(5))
        #expect(head.fields.map(\.known) == [.host, .contentLength, .xForwardedFor])
        #expect(head.desync == .compliant)
    }

    @Test func anUnfinishedHeadAsksForMore() {
        #expect(!isComplete(request("GET / HTTP/1.1\r\nHost: a\r\n").0))
        if case .incomplete = request("GET / HTTP/1.1\r\nHost: a\r\n").0 {} else { Issue.record("not incomplete") }
    }

    @Test func connectionSemantics() {
        #expect(request("GET / HTTP/1.0\r\n\r\n").1.closes)
        #expect(!request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").1.closes)
        #expect(request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").1.closes)
        let upgrade = request("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").1
        #expect(upgrade.upgrade)
        #expect(request("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").1.expectsContinue)
        #expect(request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").1.framing == .chunked)
    }

    /// Severe requests are refused before anything is forwarded, with what was wrong.
    @Test func malformedRequestsSayWhy() {
        #expect(malformedReason(request("GET / HTTP/1.1\r\nHost : x\r\n\r\n").0)?.contains("space between") == true)
        #expect(malformedReason(request("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n").0)?.contains("folded") == true)
        #expect(
            malformedReason(request("GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").0)?.contains(
                "two different Content-Length") == true)
        #expect(malformedReason(request("GET / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n").0) != nil)
        #expect(malformedReason(request("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").0) != nil)
        #expect(malformedReason(request("GET / HTTP/2.0\r\n\r\n").0)?.contains("HTTP/1.0 or HTTP/1.1") == true)
        #expect(malformedReason(request("GET /a b HTTP/1.1\r\n\r\n").0) != nil)
        #expect(malformedReason(request("GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n").0)?.contains("control byte") == true)
        #expect(malformedReason(request("GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n").0)?.contains("bare CR or LF") == true)
    }

    /// Requests other servers might read otherwise are forwarded in defensive mode, and then the
    /// connection closes: both length fields (chunked wins), Host twice.
    @Test func ambiguousRequestsAreMarked() {
        let both = request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").1
        #expect(both.desync == .ambiguous && both.framing == .chunked && both.closes)
        #expect(request("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").1.desync == .ambiguous)
        #expect(request("GET / HTTP/1.1\r\n\r\n").1.desync == .acceptable)  // HTTP/1.1 without Host
    }

    @Test func responseFraming() {
        #expect(response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n").1.framing == .length(3))
        #expect(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").1.framing == .chunked)
        let untilClose = response("HTTP/1.1 200 OK\r\n\r\n").1
        #expect(untilClose.framing == .untilClose && untilClose.closes)
        #expect(response("HTTP/1.1 204 No Content\r\n\r\n").1.framing == .none)
        #expect(response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").1.framing == .none)
        #expect(response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", head: true).1.framing == .none)
        #expect(response("HTTP/1.1 100 Continue\r\n\r\n").1.status == 100)
        #expect(malformedReason(response("HTTP/1.1 2xx OK\r\n\r\n").0) != nil)
        #expect(malformedReason(response("SSH-2.0-OpenSSH\r\n\r\n").0) != nil)
    }

    @Test func chunkedBodiesEndWhereTheyEnd() {
        func feed(_ parts: [String]) -> [ChunkedBody.Step] {
            var body = ChunkedBody()
            return parts.map { part in Array(part.utf8).withUnsafeBytes { body.consume($0) } }
        }
        #expect(feed(["5\r\nhello\r\n0\r\n\r\nNEXT"]) == [.ends(15)])
        #expect(feed(["5;ext=1\r\nhel", "lo\r\n", "0\r\nTrailer: x\r\n\r\n"]) == [.more, .more, .ends(17)])
        #expect(feed(["a\r\n0123456789\r\n0\r\n", "\r\n"]) == [.more, .ends(2)])
        #expect(feed(["zz\r\n"]) == [.malformed])
        #expect(feed(["3\r\nabcX"]) == [.malformed])
    }
}

/// Application load balancers in the file: the type decides the listener protocols, the attribute
/// tables and the target groups' defaults; what is not served yet is refused by name.
@Suite struct ApplicationLoadBalancerConfiguration {
    func document(
        listener: String = #""Protocol": "HTTP""#, group: String = #""Protocol": "HTTP""#,
        groupAttributes: String = "[]", balancerAttributes: String = "[]"
    ) -> String {
        """
        { "LoadBalancer": { "Name": "alb", "Type": "application",
            "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ],
            "LoadBalancerAttributes": \(balancerAttributes) },
          "Listeners": [ { "Port": 80, \(listener), "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
          "TargetGroups": [ { "Name": "web", \(group), "Port": 8080, "TargetType": "ip",
            "TargetGroupAttributes": \(groupAttributes) } ] }
        """
    }

    @Test func anHTTPGroupHasALBsDefaults() throws {
        let c = try load(document()).configuration
        #expect(c.loadBalancers[0].type == .application && c.listeners[0].protocolName == .http)
        let group = c.targetGroups[0]
        #expect(group.healthCheck.protocolName == .http && group.healthCheck.timeoutSeconds == 5)
        #expect(group.healthCheck.matcher == [200...200] && group.healthCheck.intervalSeconds == 30)
        let keys = group.effectiveAttributes.map(\.key)
        #expect(keys.contains("slow_start.duration_seconds") && !keys.contains("proxy_protocol_v2.enabled"))
        #expect(group.effectiveAttributes.first { $0.key == "stickiness.type" }?.value == "lb_cookie")
        // What --persist writes reads back as an application load balancer.
        #expect(try load(c.document.rendered).configuration.loadBalancers[0].type == .application)
    }

    /// An ALB listener's attributes (docs/alb.md §24): the Server header of its own answers and the
    /// response headers it adds, read, written back, and refused by name when AWS would refuse them.
    @Test func listenerAttributesAreALBs() throws {
        let withAttributes: (String) -> String = { attributes in
            document(listener: #""Protocol": "HTTP", "ListenerAttributes": \#(attributes)"#)
        }
        let loaded = try load(
            withAttributes(
                #"[ { "Key": "routing.http.response.server.enabled", "Value": "false" }, { "Key": "routing.http.response.x_frame_options.header_value", "Value": "DENY" } ]"#
            )
        ).configuration
        let listener = loaded.listeners[0]
        #expect(!listener.serverHeader && listener.responseHeaderValues[9] == "DENY")
        let described = ListenerConfiguration.index(.http).describe(listener)
        #expect(described.count == 11 && described[0] == ("routing.http.response.server.enabled", "false"))
        #expect(!described.contains { $0.key == "tcp.idle_timeout.seconds" })
        // What --persist writes reads back the same.
        let again = try load(loaded.document.rendered).configuration.listeners[0]
        #expect(!again.serverHeader && again.responseHeaderValues == listener.responseHeaderValues)
        func refused(_ key: String, _ value: String, _ text: String) -> Bool {
            problems(withAttributes(#"[ { "Key": "\#(key)", "Value": "\#(value)" } ]"#)).contains { $0.contains(text) }
        }
        #expect(refused("routing.http.response.x_content_type_options.header_value", "sniff", "is not nosniff"))
        #expect(
            refused(
                "routing.http.response.strict_transport_security.header_value", "1 year",
                "does not start with max-age=<seconds>"))
        #expect(
            refused(
                "routing.http.response.access_control_max_age.header_value", "999999", "from 0 to 86400"))
        #expect(
            refused("routing.http.response.access_control_allow_methods.header_value", "GET, FETCH", "comma-separated"))
        #expect(refused("tcp.idle_timeout.seconds", "120", "not a HTTP listener attribute"))
        // The TLS headers' names are an HTTPS listener's.
        #expect(refused("routing.http.request.x_amzn_tls_version.header_name", "X-V", "not a HTTP listener attribute"))
        #expect(ListenerConfiguration.index(.https).describe(listener).count == 13)
    }

    @Test func whatIsNotServedIsRefusedByName() throws {
        #expect(
            problems(document(listener: #""Protocol": "TCP""#)).contains {
                $0.contains("TCP is a network load balancer's protocol; alb is an application load balancer")
            })
        #expect(
            problems(document(groupAttributes: #"[ { "Key": "proxy_protocol_v2.enabled", "Value": "true" } ]"#))
                .contains { $0.contains("gets the client's address in X-Forwarded-For") })
        #expect(
            problems(
                document(
                    groupAttributes:
                        #"[ { "Key": "stickiness.enabled", "Value": "true" }, { "Key": "stickiness.type", "Value": "app_cookie" } ]"#
                )
            ).contains { $0.contains("app_cookie stickiness follows the application's cookie of this name") })
        #expect(
            problems(
                document(groupAttributes: #"[ { "Key": "stickiness.app_cookie.cookie_name", "Value": "AWSALBX" } ]"#)
            ).contains { $0.contains("starts with a name AWS reserves") })
        #expect(
            problems(
                document(groupAttributes: #"[ { "Key": "stickiness.type", "Value": "source_ip" } ]"#)
            ).contains { $0.contains("is not lb_cookie or app_cookie") })
        #expect(
            problems(
                document(
                    groupAttributes: #"[ { "Key": "load_balancing.algorithm.anomaly_mitigation", "Value": "on" } ]"#)
            ).contains { $0.contains("anomaly mitigation (automatic target weights") })
        // An HTTPS group: ALB re-encrypts, and checks it over HTTPS.
        #expect(
            try load(document(group: #""Protocol": "HTTPS""#)).configuration.targetGroups[0].healthCheck.protocolName
                == .https)
        #expect(
            problems(
                document(balancerAttributes: #"[ { "Key": "routing.http.desync_mitigation_mode", "Value": "lax" } ]"#)
            ).contains { $0.contains("is not monitor, defensive or strictest") })
        #expect(
            problems(
                document(groupAttributes: #"[ { "Key": "deregistration_delay.timeout_seconds", "Value": "30" } ]"#)
            ).isEmpty)
    }
}

/// Listener rules: AWS's wildcards, and what the file refuses, by name.
@Suite struct ListenerRules {
    func glob(_ pattern: String, _ text: String, case folding: Bool = true) -> Bool {
        Array(text.utf8).withUnsafeBytes { Glob.matches(Array(pattern.utf8), $0, foldingCase: folding) }
    }

    @Test func wildcardsMatchAsAWSDoes() {
        #expect(glob("/api/*", "/api/users/7", case: false) && glob("/api/*", "/api/", case: false))
        #expect(!glob("/api/*", "/API/x", case: false) && glob("*.example.com", "www.example.com"))
        #expect(glob("img?.png", "img1.png") && !glob("img?.png", "img10.png") && glob("*", ""))
        #expect(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy"))
    }

    func document(_ rules: String) -> String {
        """
        { "LoadBalancer": { "Name": "alb", "Type": "application",
            "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ] },
          "Listeners": [ { "Port": 80, "Protocol": "HTTP", "Rules": \(rules),
            "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
          "TargetGroups": [ { "Name": "web", "Protocol": "HTTP", "Port": 8080, "TargetType": "ip" },
            { "Name": "tcp", "Port": 8080, "TargetType": "ip" } ] }
        """
    }

    @Test func rulesAreReadSortedAndKept() throws {
        let loaded = try load(
            document(
                #"[ { "Priority": 20, "Conditions": [ { "Field": "path-pattern", "Values": [ "/b*" ] } ], "Actions": [ { "Type": "forward", "TargetGroupName": "web" } ] }, "#
                    + #"{ "Priority": 5, "Conditions": [ { "Field": "source-ip", "SourceIpConfig": { "Values": [ "10.0.0.0/8" ] } } ], "Actions": [ { "Type": "fixed-response", "FixedResponseConfig": { "StatusCode": "404" } } ] } ]"#
            ))
        let rules = loaded.configuration.listeners[0].rules
        #expect(rules.map(\.priority) == [5, 20])
        #expect(rules[0].action == .fixedResponse(statusCode: 404, contentType: nil, body: nil))
        // What --persist writes reads back with the same ids.
        #expect(
            try load(loaded.configuration.document.rendered).configuration.listeners[0].rules.map(\.id)
                == rules.map(\.id))
    }

    @Test func weightedForwardsAreRead() throws {
        let rules = try load(
            document(
                #"[ { "Priority": 1, "Conditions": [ { "Field": "path-pattern", "Values": [ "/" ] } ], "Actions": [ { "Type": "forward", "ForwardConfig": { "TargetGroups": [ { "TargetGroupArn": "web", "Weight": 3 }, { "TargetGroupArn": "web2", "Weight": 1 } ] } } ] } ]"#
            ).replacingOccurrences(
                of: #"{ "Name": "tcp","#,
                with: #"{ "Name": "web2", "Protocol": "HTTP", "Port": 8081, "TargetType": "ip" }, { "Name": "tcp","#)
        ).configuration.listeners[0].rules
        #expect(rules[0].action == .weightedForward([.init(name: "web", weight: 3), .init(name: "web2", weight: 1)]))
        #expect(
            problems(
                document(
                    #"[ { "Priority": 1, "Conditions": [ { "Field": "path-pattern", "Values": [ "/" ] } ], "Actions": [ { "Type": "forward", "ForwardConfig": { "TargetGroups": [ { "TargetGroupArn": "web", "Weight": 1000 } ] } } ] } ]"#
                )
            ).contains { $0.contains("out of range (0-999)") })
    }

    /// Target group stickiness (`AWSALBTG`): read with its duration, written back, and refused without one.
    @Test func groupStickinessIsReadAndItsRulesHold() throws {
        let twoGroups: (String) -> String = { rules in
            document(rules).replacingOccurrences(
                of: #"{ "Name": "tcp","#,
                with: #"{ "Name": "web2", "Protocol": "HTTP", "Port": 8081, "TargetType": "ip" }, { "Name": "tcp","#)
        }
        func rule(_ stickiness: String, weights: (Int, Int) = (1, 1)) -> String {
            #"[ { "Priority": 1, "Conditions": [ { "Field": "path-pattern", "Values": [ "/" ] } ], "Actions": [ { "Type": "forward", "ForwardConfig": { "TargetGroups": [ { "TargetGroupArn": "web", "Weight": \#(weights.0) }, { "TargetGroupArn": "web2", "Weight": \#(weights.1) } ], "TargetGroupStickinessConfig": \#(stickiness) } } ] } ]"#
        }
        let loaded = try load(twoGroups(rule(#"{ "Enabled": true, "DurationSeconds": 300 }"#))).configuration
        let action = loaded.listeners[0].rules[0].action
        #expect(
            action
                == .weightedForward(
                    [.init(name: "web", weight: 1), .init(name: "web2", weight: 1)], stickySeconds: 300))
        // What --persist writes reads back the same.
        #expect(try load(loaded.document.rendered).configuration.listeners[0].rules[0].action == action)
        #expect(
            try load(twoGroups(rule(#"{ "Enabled": false, "DurationSeconds": 300 }"#))).configuration.listeners[0]
                .rules[0].action == .weightedForward([.init(name: "web", weight: 1), .init(name: "web2", weight: 1)]))
        #expect(
            problems(twoGroups(rule(#"{ "Enabled": true }"#))).contains {
                $0.contains("TargetGroupStickinessConfig.DurationSeconds: missing: with Enabled true")
            })
        #expect(
            problems(twoGroups(rule(#"{ "Enabled": true, "DurationSeconds": 604801 }"#))).contains {
                $0.contains("DurationSeconds") && $0.contains("out of range (1-604800)")
            })
        // A sticky group among several needs group stickiness (AWS's rule).
        let stickyWeb = twoGroups(rule(#"{ "Enabled": false }"#)).replacingOccurrences(
            of: #"{ "Name": "web", "Protocol": "HTTP", "Port": 8080, "TargetType": "ip" }"#,
            with:
                #"{ "Name": "web", "Protocol": "HTTP", "Port": 8080, "TargetType": "ip", "TargetGroupAttributes": [ { "Key": "stickiness.enabled", "Value": "true" } ] }"#
        )
        #expect(
            problems(stickyWeb).contains {
                $0.contains("target group web has stickiness.enabled: a forward to several target groups")
            })
    }

    @Test func badRulesAreNamed() {
        func says(_ rules: String, _ text: String) -> Bool { problems(document(rules)).contains { $0.contains(text) } }
        let forward = #""Actions": [ { "Type": "forward", "TargetGroupName": "web" } ]"#
        #expect(
            says(
                #"[ { "Priority": 1, "Conditions": [ { "Field": "path", "Values": [ "/" ] } ], "# + forward + " } ]",
                #""path" is not one of host-header"#))
        #expect(
            says(
                #"[ { "Priority": 0, "Conditions": [ { "Field": "path-pattern", "Values": [ "/" ] } ], "# + forward
                    + " } ]", "out of range (1-50000)"))
        #expect(says(#"[ { "Priority": 1, "# + forward + " } ]", "a rule needs at least one condition"))
        #expect(
            says(
                #"[ { "Priority": 1, "Conditions": [ { "Field": "path-pattern", "Values": [ "/a", "/b", "/c", "/d", "/e", "/f" ] } ], "#
                    + forward + " } ]", "AWS allows 5 match evaluations a rule"))
        #expect(
            says(
                #"[ { "Priority": 1, "Conditions": [ { "Field": "path-pattern", "Values": [ "/" ] } ], "Actions": [ { "Type": "forward", "TargetGroupName": "tcp" } ] } ]"#,
                "a rule forwards to an HTTP target group; tcp is TCP"))
        #expect(
            says(
                #"[ { "Priority": 1, "Conditions": [ { "Field": "path-pattern", "Values": [ "/" ] } ], "Actions": [ { "Type": "authenticate-oidc" } ] } ]"#,
                "authenticate-* actions are not emulated"))
        #expect(
            says(
                #"[ { "Priority": 1, "Conditions": [ { "Field": "source-ip", "SourceIpConfig": { "Values": [ "10.0.0.1" ] } } ], "#
                    + forward + " } ]",
                #""10.0.0.1" is not a CIDR block"#))
        #expect(
            says(
                #"[ { "Priority": 1, "Conditions": [ { "Field": "path-pattern", "Values": [ "/" ] } ], "# + forward
                    + " }, "
                    + #"{ "Priority": 1, "Conditions": [ { "Field": "path-pattern", "Values": [ "/x" ] } ], "# + forward
                    + " } ]",
                "PriorityInUse"))
    }
}
