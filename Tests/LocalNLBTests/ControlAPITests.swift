import Foundation
import ProxyProtocol
import Synchronization
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The control API: each endpoint, each error status, the token rule, and `localnlb ctl`.
@Suite(.serialized) struct ControlAPI {
    func start(token: String? = nil, _ change: (inout TargetGroupConfiguration) -> Void = { _ in }) throws -> (
        RunningBalancer, API, TestServer
    ) {
        let server = try TestServer()
        var config = configuration(targets: [server.endpoint], attributes: change)
        config.admin = AdminConfiguration(address: IPEndpoint(ip: loopback, port: 0), token: token)
        let lb = try RunningBalancer(config)
        return (lb, API(endpoint: lb.adminEndpoint!, token: token), server)
    }

    @Test func describeTargetGroups() throws {
        let (lb, api, _) = try start()
        defer { lb.stop() }
        let (status, json) = try api.call("GET", "/target-groups")
        #expect(status == 200)
        let group = (json["TargetGroups"] as! [[String: Any]])[0]
        #expect(group["TargetGroupName"] as? String == "tg")
        #expect(group["TargetType"] as? String == "ip")
        #expect(group["HealthCheckIntervalSeconds"] as? Int == 30)
        #expect((group["Matcher"] as? [String: Any])?["HttpCode"] as? String == "200-399")
        let attributes = group["Attributes"] as! [[String: String]]
        #expect(attributes.contains(["Key": "preserve_client_ip.enabled", "Value": "false"]))
    }

    @Test func describeTargetHealthWithActiveFlows() throws {
        let (lb, api, server) = try start()
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        try client.send("x")
        _ = try server.accept().receive(exactly: 1)
        let (status, json) = try api.call("GET", "/target-groups/tg/health")
        #expect(status == 200)
        let description = (json["TargetHealthDescriptions"] as! [[String: Any]])[0]
        #expect((description["Target"] as! [String: Any])["Port"] as? Int == Int(server.endpoint.port))
        #expect(description["HealthCheckPort"] as? String == String(server.endpoint.port))
        // Health checks are off in this group: AWS's state for that.
        #expect(
            description["TargetHealth"] as? [String: String] == [
                "State": "unavailable", "Reason": "Target.HealthCheckDisabled",
                "Description": "Health checks are disabled for the target group",
            ])
        #expect(description["ActiveFlowCount"] as? Int == 1)
        let (_, flows) = try api.call("GET", "/flows")
        let flow = (flows["Flows"] as! [[String: Any]])[0]
        #expect(flow["client"] as? String == client.local.description)
        #expect(flow["target"] as? String == server.endpoint.description)
        #expect(flow["bytesFromClient"] as? Int == 1)
        #expect(flow["state"] as? String == "established")
    }

    /// The event log tells listeners, registrations, every change of state with its reason, and
    /// attribute changes with the old and new value.
    @Test func theEventLogTellsWhatChanged() throws {
        let (lb, api, server) = try start()
        let other = IPEndpoint(ip: otherLoopback, port: server.endpoint.port)
        #expect(
            try api.call(
                "POST", "/target-groups/tg/register", #"{"Targets":[{"Id":"127.0.0.2","Port":\#(other.port)}]}"#
            ).0 == 200)
        #expect(
            try api.call(
                "POST", "/target-groups/tg/deregister", #"{"Targets":[{"Id":"127.0.0.2","Port":\#(other.port)}]}"#
            ).0 == 200)
        let body = #"{"Attributes":[{"Key":"deregistration_delay.timeout_seconds","Value":"7"}]}"#
        #expect(try api.call("PUT", "/target-groups/tg/attributes", body).0 == 200)
        lb.stop()
        let listener = lb.endpoint()
        #expect(
            lb.logLines == [
                "listener \(listener) opened, forwarding to tg",
                "target group tg: target \(server.endpoint) registered, unavailable (Target.HealthCheckDisabled)",
                "target group tg: target \(other) registered, unavailable (Target.HealthCheckDisabled)",
                "target group tg: target \(other) unavailable → draining (Target.DeregistrationInProgress)",
                "target group tg: deregistration_delay.timeout_seconds 300 → 7 (ModifyTargetGroupAttributes)",
                "listener \(listener) closed",
            ])
    }

    @Test func registerAndDeregister() throws {
        let (lb, api, server) = try start()
        defer { lb.stop() }
        let extra = try TestServer()
        let body = #"{"Targets":[{"Id":"127.0.0.1","Port":\#(extra.endpoint.port)}]}"#
        #expect(try api.call("POST", "/target-groups/tg/register", body).0 == 200)
        #expect(try api.states().keys.sorted() == [server.endpoint.description, extra.endpoint.description].sorted())
        #expect(try api.call("POST", "/target-groups/tg/deregister", body).0 == 200)
        #expect(try api.states()[extra.endpoint.description] == "draining")
        // AWS: deregistering a target that is not registered succeeds and changes nothing.
        let (status, _) = try api.call(
            "POST", "/target-groups/tg/deregister", #"{"Targets":[{"Id":"127.0.0.9","Port":1}]}"#)
        #expect(status == 200)
        #expect(try api.states()[server.endpoint.description] != "draining")
        // All or none: a malformed target, and the registered one beside it keeps its state.
        let mixed =
            #"{"Targets":[{"Id":"127.0.0.1","Port":\#(server.endpoint.port)},{"Id":"127.0.0.1","Port":0}]}"#
        #expect(try api.call("POST", "/target-groups/tg/deregister", mixed).0 == 400)
        #expect(try api.states()[server.endpoint.description] != "draining")
    }

    @Test func modifyAttributesAppliesToNewFlows() throws {
        let (lb, api, server) = try start()
        defer { lb.stop() }
        let (status, json) = try api.call(
            "PUT", "/target-groups/tg/attributes",
            #"{"Attributes":[{"Key":"proxy_protocol_v2.enabled","Value":"true"}]}"#)
        #expect(status == 200)
        #expect(
            (json["Attributes"] as! [[String: String]]).contains(["Key": "proxy_protocol_v2.enabled", "Value": "true"]))
        let client = try TestSocket.connect(to: lb.endpoint())
        try client.send("x")
        let header = ProxyHeader.aws(source: client.local, destination: lb.endpoint()).encoded()
        #expect(try server.accept().receive(exactly: header.count + 1) == header + Array("x".utf8))
        // Other attributes keep their values: a PUT changes only what it names.
        let (_, after) = try api.call("GET", "/target-groups/tg/attributes")
        #expect(
            (after["Attributes"] as! [[String: String]]).contains([
                "Key": "deregistration_delay.timeout_seconds", "Value": "300",
            ]))
    }

    @Test func errorsAreJSONWithAStatus() throws {
        let (lb, api, _) = try start()
        defer { lb.stop() }
        func code(_ method: String, _ path: String, _ body: String? = nil) throws -> (Int, String?) {
            let (status, json) = try api.call(method, path, body)
            return (status, (json["Error"] as? [String: String])?["Code"])
        }
        #expect(try code("GET", "/target-groups/nope/health") == (404, "TargetGroupNotFound"))
        #expect(try code("GET", "/nothing") == (404, "NotFound"))
        #expect(try code("DELETE", "/target-groups/tg/health") == (405, "MethodNotAllowed"))
        #expect(try code("POST", "/target-groups/tg/register", "{not json") == (400, "ValidationError"))
        #expect(
            try code("POST", "/target-groups/tg/register", #"{"Targets":[{"Id":"db.internal"}]}"#) == (
                400, "ValidationError"
            ))
        let (status, json) = try api.call(
            "PUT", "/target-groups/tg/attributes",
            #"{"Attributes":[{"Key":"proxy_protocol_v2.enabled","Value":"yes"}]}"#)
        #expect(status == 400)
        #expect(
            (json["Error"] as? [String: String])?["Message"]
                == #"Attributes["proxy_protocol_v2.enabled"]: "yes" is not true or false"#)
    }

    @Test func aTooLargeRequestIsRefused() throws {
        let (lb, api, _) = try start()
        defer { lb.stop() }
        let huge = String(repeating: "x", count: AdminRequest.maximumSize + 10)
        let (status, _) = try api.call("POST", "/target-groups/tg/register", huge)
        #expect(status == 413)
        // The loop is still serving.
        #expect(try api.call("GET", "/target-groups").0 == 200)
    }

    @Test func theTokenIsDemandedWhenConfigured() throws {
        let token = "0123456789abcdef-secret"
        let (lb, api, _) = try start(token: token)
        defer { lb.stop() }
        #expect(try api.call("GET", "/target-groups").0 == 200)
        var anonymous = api
        anonymous.token = nil
        #expect(try anonymous.call("GET", "/target-groups").0 == 401)
        anonymous.token = "wrong-token-wrong-token"
        #expect(try anonymous.call("GET", "/target-groups").0 == 401)
    }

    @Test func metricsUseCloudWatchNamesInSnakeCase() throws {
        let (lb, api, server) = try start()
        defer { lb.stop() }
        let client = try TestSocket.connect(to: lb.endpoint())
        try client.send("abc")
        _ = try server.accept().receive(exactly: 3)
        let text = try api.call("GET", "/metrics").1["text"] as? String ?? ""
        let labels = #"{load_balancer="test-nlb",target_group="tg"}"#
        #expect(text.contains("localnlb_new_flow_count_total\(labels) 1\n"))
        #expect(text.contains("localnlb_active_flow_count\(labels) 1\n"))
        #expect(text.contains("localnlb_processed_bytes_total\(labels) 3\n"))
        #expect(
            text.contains(
                #"localnlb_target_active_flow_count{load_balancer="test-nlb",target_group="tg",target="\#(server.endpoint)"} 1"#
            ))
        for name in [
            "healthy_host_count", "unhealthy_host_count", "tcp_client_reset_count_total",
            "tcp_target_reset_count_total", "tcp_elb_reset_count_total", "unhealthy_routing_flow_count_total",
            "port_allocation_error_count_total", "client_tls_negotiation_error_count_total",
        ] {
            #expect(text.contains("# TYPE localnlb_\(name) "))
        }
    }

    @Test func ctlSpeaksTheAWSCLIShapes() throws {
        let (lb, api, server) = try start()
        defer { lb.stop() }
        let url = "http://\(api.endpoint)"
        let health = ControlCommand.run(["describe-target-health", "--target-group-name", "tg", "--endpoint-url", url])
        #expect(health.exitCode == 0)
        #expect(
            health.output.hasPrefix("{\n    \"TargetHealthDescriptions\": [\n        {\n            \"Target\": {\n"))
        let extra = try TestServer()
        let register = ControlCommand.run([
            "register-targets", "--target-group-name", "tg", "--targets", "Id=127.0.0.1,Port=\(extra.endpoint.port)",
            "--endpoint-url", url,
        ])
        #expect(register.exitCode == 0)
        #expect(try api.states().count == 2)
        let arn = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/" + ResourceNames.id("tg/tg")
        let modify = ControlCommand.run([
            "--output", "text", "modify-target-group-attributes", "--target-group-arn", arn,
            "--attributes", "Key=deregistration_delay.timeout_seconds,Value=30", "--endpoint-url", url,
        ])
        #expect(modify.exitCode == 0)
        #expect(modify.output.contains("ATTRIBUTES\tderegistration_delay.timeout_seconds\t30\n"))
        #expect(modify.error.isEmpty)
        // A value AWS would refuse is refused, as the AWS CLI would be told (the file only warns).
        let beyondAWS = ControlCommand.run([
            "modify-target-group-attributes", "--target-group-name", "tg",
            "--attributes", "Key=deregistration_delay.timeout_seconds,Value=5000", "--endpoint-url", url,
        ])
        #expect(beyondAWS.exitCode == 254)
        #expect(
            beyondAWS.error
                == "\nAn error occurred (ValidationError) when calling the ModifyTargetGroupAttributes operation: "
                + "Attributes[\"deregistration_delay.timeout_seconds\"]: \"5000\" is outside AWS's range 0-3600; AWS would reject it\n"
        )
        let missing = ControlCommand.run([
            "describe-target-health", "--target-group-arn", arn.replacingOccurrences(of: "/tg/", with: "/nope/"),
            "--endpoint-url", url,
        ])
        #expect(missing.exitCode == 254)
        #expect(
            missing.error.hasPrefix(
                "\nAn error occurred (TargetGroupNotFound) when calling the DescribeTargetHealth operation: "))
        let usage = ControlCommand.run(["register-targets", "--target-group-name", "tg"])
        #expect(usage.exitCode == 252)
        #expect(usage.error == "ctl register-targets: --targets is required\n")
        let unknown = ControlCommand.run(["describe-listeners", "--load-balancer", "x", "--endpoint-url", url])
        #expect(unknown.exitCode == 252)
        #expect(
            unknown.error
                == "ctl describe-listeners: unknown option --load-balancer (options: --load-balancer-arn "
                + "--listener-arns --marker --page-size)\n")
        _ = server
    }

    @Test func ctlSaysWhenNothingListens() throws {
        let port = try closedPort()
        let outcome = ControlCommand.run(["describe-target-groups", "--endpoint-url", "http://127.0.0.1:\(port)"])
        #expect(outcome.exitCode == 255)
        #expect(outcome.error.contains("is localnlb serve running?"))
    }
}

@Suite struct AdminConfigurationRules {
    @Test func aNonLoopbackAddressNeedsAToken() {
        let json = document().replacingOccurrences(
            of: #""LoadBalancer""#, with: #""Admin": { "Address": "0.0.0.0:8404" }, "LoadBalancer""#)
        #expect(
            problems(json) == [
                "Admin.Address: 0.0.0.0:8404 is not loopback: set Admin.Token too, so only holders of the token can change targets"
            ])
        let withToken = document().replacingOccurrences(
            of: #""LoadBalancer""#,
            with: #""Admin": { "Address": "0.0.0.0:8404", "Token": "a-long-random-token-123" }, "LoadBalancer""#)
        #expect(problems(withToken).isEmpty)
    }

    @Test func hostNamesAndPublicMetricsAreChecked() throws {
        let bad = document().replacingOccurrences(
            of: #""LoadBalancer""#,
            with:
                #""Admin": { "HostNames": ["lb.test", "not a name", "127.0.0.1"], "PublicMetrics": "yes" }, "LoadBalancer""#
        )
        #expect(
            problems(bad) == [
                #"Admin.HostNames[1]: "not a name" is not a DNS name such as lb.test"#,
                #"Admin.HostNames[2]: "127.0.0.1" is not a DNS name such as lb.test"#,
                #"Admin.PublicMetrics: "yes" is not true or false"#,
            ])
        let good = document().replacingOccurrences(
            of: #""LoadBalancer""#,
            with: #""Admin": { "HostNames": ["LB.test"], "PublicMetrics": true }, "LoadBalancer""#)
        let admin = try #require(try load(good).configuration.admin)
        #expect(admin.hostNames == ["lb.test"] && admin.publicMetrics)
        let redacted = document().replacingOccurrences(
            of: #""LoadBalancer""#, with: #""Admin": { "Token": "REDACTED" }, "LoadBalancer""#)
        #expect(problems(redacted).first?.hasPrefix(#"Admin.Token: is "REDACTED", the placeholder"#) == true)
    }

    @Test func theDefaultIsLoopback8404() throws {
        #expect(try load(document()).configuration.admin == AdminConfiguration(address: IPEndpoint("127.0.0.1:8404")!))
        let off = document().replacingOccurrences(
            of: #""LoadBalancer""#, with: #""Admin": { "Enabled": false }, "LoadBalancer""#)
        #expect(try load(off).configuration.admin == nil)
    }
}

/// What the daemon says when a signal cannot do what it usually does.
@Suite struct Signals {
    @Test func aSIGHUPWithNoFileToReloadSaysSo() throws {
        let lines = Mutex<[String]>([])
        var options = LoadBalancerOptions()
        options.log = { line in lines.withLock { $0.append(line) } }
        options.flowLog = .disabled
        var config = configuration(targets: [])
        config.dns = nil
        let plane = try ControlPlane(configuration: config, options: options, bell: ControlBell())
        plane.reloadConfiguration()
        #expect(lines.withLock { $0 } == ["SIGHUP: nothing to reload: serve was started without --config"])
    }
}

/// The DNS responder's default address taken (a second daemon, a template's daemon) is no failure and
/// no loss of DNS: it answers on a free port of that address and says which.
@Suite struct DNSDefaultAddress {
    @Test func aTakenDefaultAddressFallsBackToAFreePort() throws {
        let held = try Socket.datagram(on: IPEndpoint(ip: loopback, port: 0))
        defer { closeDescriptor(held) }
        let busy = try #require(Socket.localEndpoint(held))
        let lines = Mutex<[String]>([])
        var options = LoadBalancerOptions()
        options.log = { line in lines.withLock { $0.append(line) } }
        options.flowLog = .disabled
        var config = configuration(targets: [])
        config.dns = DNSConfiguration(address: busy, explicit: false)  // as the default is
        let plane = try ControlPlane(configuration: config, options: options, bell: ControlBell())
        let answering = try #require(plane.dnsEndpoint)
        #expect(answering.ip == busy.ip && answering.port != busy.port && answering.port != 0)
        #expect(
            lines.withLock { $0 }.contains {
                $0.contains("address already in use") && $0.contains("answering on \(answering) instead")
            })
        // Given explicitly, the same address taken is an error naming the fix.
        config.dns = DNSConfiguration(address: busy, explicit: true)
        #expect(throws: ListenerError.self) {
            try ControlPlane(configuration: config, options: options, bell: ControlBell())
        }
    }
}

/// Health checks say why: the cause of the failing check at the turn to unhealthy, and what a target
/// registered in `initial` waits for.
@Suite struct HealthCheckCauses {
    @Test func aTargetTurningUnhealthySaysWhyAndAnInitialOneWhatItWaitsFor() throws {
        let closed = IPEndpoint(ip: loopback, port: try closedPort())
        let config = configuration(targets: [closed]) { $0.healthCheck.enabled = true }
        let lb = try RunningBalancer(config, timeScale: 0.01)
        defer { lb.stop() }
        let deadline = Date().addingTimeInterval(5)
        while !lb.logLines.contains(where: { $0.contains("→ unhealthy") }) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        let lines = lb.logLines
        #expect(
            lines.contains {
                $0.hasPrefix(
                    "target group tg: target \(closed) initial → unhealthy (Target.FailedHealthChecks): connect:")
            }, "\(lines)")
        #expect(
            lines.contains {
                $0.hasSuffix(
                    "registered, initial (Elb.RegistrationInProgress); healthy at its first passing check (now, "
                        + "then every 30 s × --time-scale 0.01), unhealthy after 2 failing (about 0.6 s)")
            }, "\(lines)")
    }

    /// The PROXY header on one side only, the seeds' commonest mistake: an HTTP check against a target
    /// that requires the header, from a group that does not send it, names both sides and the fix.
    @Test func aProxyMismatchIsNamedAsTheLikelyCause() throws {
        let target = try TargetServer(options: .init(listen: IPEndpoint(ip: loopback, port: 0), proxyMode: .required))
        target.start()
        defer { target.stop() }
        let config = configuration(targets: [target.endpoint]) {
            $0.healthCheck.enabled = true
            $0.healthCheck.protocolName = .http
        }
        let lb = try RunningBalancer(config, timeScale: 0.01)
        defer { lb.stop() }
        let deadline = Date().addingTimeInterval(5)
        while !lb.logLines.contains(where: { $0.contains("→ unhealthy") }) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        let turn = lb.logLines.first { $0.contains("→ unhealthy") } ?? "none"
        #expect(
            turn.contains("does the target parse PROXY headers while proxy_protocol_v2.enabled is false?"), "\(turn)")
    }
}
