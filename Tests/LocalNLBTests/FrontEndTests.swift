import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The JSON API and the Query API decode into the same changes: what AWS refuses, both refuse, with
/// the same error code and the parameter named, and nothing changes; every Query action that changes
/// something is refused over HTTP as the change function refuses it.
@Suite(.serialized) struct FrontEnds {
    let names = ResourceNames(region: "us-east-1", accountID: "000000000000")

    func query(_ form: [(String, String)], to admin: IPEndpoint) throws -> (status: Int, code: String, text: String) {
        let body = (form + [("Version", "2015-12-01")]).map { "\($0.0)=\(SigV4.encode($0.1))" }.joined(separator: "&")
        let (status, text) = try ControlCommand.send(
            method: "POST", path: "/", body: body,
            headers: [("Host", admin.description), ("Content-Type", "application/x-www-form-urlencoded")], to: admin)
        let code = text.components(separatedBy: "<Code>").dropFirst().first?.components(separatedBy: "<").first ?? ""
        return (status, code, text)
    }

    func json(_ method: String, _ path: String, _ body: String, to admin: IPEndpoint) throws -> (
        status: Int, code: String, text: String
    ) {
        let (status, json) = try API(endpoint: admin).call(method, path, body)
        let error = json["Error"] as? [String: Any] ?? [:]
        return (status, error["Code"] as? String ?? "", error["Message"] as? String ?? "\(json)")
    }

    @Test func bothAPIsRefuseWhatAWSRefusesAlike() throws {
        let server = try TestServer()
        let lb = try RunningBalancer.withControlAPI(to: server)
        defer { lb.stop() }
        let admin = lb.adminEndpoint!
        let group = names.targetGroup("tg")
        let before = try API(endpoint: admin).call("GET", "/config").1["text"] as? String

        // RegisterTargets: a port of 0.
        let jsonRegister = try json(
            "POST", "/target-groups/tg/register", #"{"Targets":[{"Id":"127.0.0.1","Port":0}]}"#, to: admin)
        let queryRegister = try query(
            [
                ("Action", "RegisterTargets"), ("TargetGroupArn", group), ("Targets.member.1.Id", "127.0.0.1"),
                ("Targets.member.1.Port", "0"),
            ], to: admin)
        for answer in [jsonRegister, queryRegister] {
            #expect(answer.status == 400 && answer.code == "ValidationError", "\(answer)")
        }
        #expect(jsonRegister.text.contains("Targets[0].Port"))
        #expect(queryRegister.text.contains("Targets.member.1.Port"))

        // DeregisterTargets: a malformed target, beside the registered one.
        let registered = server.endpoint
        let jsonDeregister = try json(
            "POST", "/target-groups/tg/deregister",
            #"{"Targets":[{"Id":"127.0.0.1","Port":\#(registered.port)},{"Id":"127.0.0.1","Port":"x"}]}"#, to: admin)
        let queryDeregister = try query(
            [
                ("Action", "DeregisterTargets"), ("TargetGroupArn", group), ("Targets.member.1.Id", "127.0.0.1"),
                ("Targets.member.1.Port", "\(registered.port)"), ("Targets.member.2.Id", "127.0.0.1"),
                ("Targets.member.2.Port", "x"),
            ], to: admin)
        for answer in [jsonDeregister, queryDeregister] {
            #expect(answer.status == 400 && answer.code == "ValidationError", "\(answer)")
        }
        #expect(jsonDeregister.text.contains("Targets[1].Port"))
        #expect(queryDeregister.text.contains("Targets.member.2.Port"))

        // ModifyTargetGroupAttributes: a value outside AWS's range, which the JSON API once applied.
        let jsonModify = try json(
            "PUT", "/target-groups/tg/attributes",
            #"{"Attributes":[{"Key":"deregistration_delay.timeout_seconds","Value":"5000"}]}"#, to: admin)
        let queryModify = try query(
            [
                ("Action", "ModifyTargetGroupAttributes"), ("TargetGroupArn", group),
                ("Attributes.member.1.Key", "deregistration_delay.timeout_seconds"),
                ("Attributes.member.1.Value", "5000"),
            ], to: admin)
        for answer in [jsonModify, queryModify] {
            #expect(answer.status == 400 && answer.code == "ValidationError", "\(answer)")
            #expect(answer.text.contains("deregistration_delay.timeout_seconds") && answer.text.contains("0-3600"))
        }

        // Nothing of it changed: the model reads as before, the target is still registered.
        #expect(try API(endpoint: admin).call("GET", "/config").1["text"] as? String == before)
        #expect(try API(endpoint: admin).states() == ["127.0.0.1:\(registered.port)": "unavailable"])
    }

    @Test func everyQueryChangeIsRefusedOverHTTPAsTheModelRefusesIt() throws {
        let server = try TestServer()
        let lb = try RunningBalancer.withControlAPI(to: server)
        defer { lb.stop() }
        let admin = lb.adminEndpoint!
        let balancer = names.loadBalancer("test-nlb")
        let (_, _, listeners) = try query([("Action", "DescribeListeners"), ("LoadBalancerArn", balancer)], to: admin)
        let listener = try #require(
            listeners.components(separatedBy: "<ListenerArn>").dropFirst().first?.components(separatedBy: "<").first)
        let cases: [(form: [(String, String)], code: String, names: String)] = [
            (
                [("Action", "CreateLoadBalancer"), ("Name", "second"), ("Type", "gateway"), ("Subnets.member.1", "s")],
                "ValidationError", "Type"
            ),
            ([("Action", "DeleteLoadBalancer"), ("LoadBalancerArn", "nope")], "ValidationError", "nope"),
            (
                [
                    ("Action", "ModifyLoadBalancerAttributes"), ("LoadBalancerArn", balancer),
                    ("Attributes.member.1.Key", "load_balancing.cross_zone.enabled"),
                    ("Attributes.member.1.Value", "maybe"),
                ], "ValidationError", "load_balancing.cross_zone.enabled"
            ),
            (
                [
                    ("Action", "CreateTargetGroup"), ("Name", "x"), ("Protocol", "TCP"), ("Port", "80"),
                    ("TargetType", "nope"),
                ],
                "ValidationError", "CreateTargetGroup.TargetType"
            ),
            ([("Action", "DeleteTargetGroup"), ("TargetGroupArn", names.targetGroup("tg"))], "ResourceInUse", "tg"),
            (
                [
                    ("Action", "ModifyTargetGroup"), ("TargetGroupArn", names.targetGroup("tg")),
                    ("HealthyThresholdCount", "99"),
                ],
                "ValidationError", "at &apos;healthyThresholdCount&apos; failed to satisfy constraint"
            ),
            (
                [
                    ("Action", "CreateListener"), ("LoadBalancerArn", balancer), ("Protocol", "TLS"), ("Port", "1"),
                    ("DefaultActions.member.1.Type", "forward"),
                    ("DefaultActions.member.1.TargetGroupArn", names.targetGroup("tg")),
                ], "ValidationError", "CreateListener.Certificates"
            ),
            (
                [("Action", "ModifyListener"), ("ListenerArn", listener), ("Protocol", "HTTP"), ("Port", "1")],
                "ValidationError", "Listener protocol &apos;HTTP&apos; must be one of"
            ),
            (
                [
                    ("Action", "ModifyListenerAttributes"), ("ListenerArn", listener),
                    ("Attributes.member.1.Key", "tcp.idle_timeout.seconds"), ("Attributes.member.1.Value", "5"),
                ], "ValidationError", "tcp.idle_timeout.seconds"
            ),
            ([("Action", "DeleteListener"), ("ListenerArn", listener + "x")], "ListenerNotFound", "x"),
            (
                [
                    ("Action", "AddTags"), ("ResourceArns.member.1", balancer), ("Tags.member.1.Key", "a"),
                    ("Tags.member.2.Key", "a"),
                ], "DuplicateTagKeys", "Tag key &apos;a&apos;"
            ),
            ([("Action", "RemoveTags"), ("ResourceArns.member.1", balancer)], "ValidationError", "TagKeys"),
        ]
        for (form, code, named) in cases {
            let answer = try query(form, to: admin)
            #expect(
                answer.status == 400 && answer.code == code && answer.text.contains(named), "\(form[0].1): \(answer)")
        }
        // The listener still serves: nothing above half-applied.
        let client = try TestSocket.connect(to: lb.endpoint())
        client.close()
    }
}
