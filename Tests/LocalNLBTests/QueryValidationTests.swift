import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The Query API's create actions refuse what the file and the modify actions refuse, naming the
/// parameter; a protocol localnlb does not serve yet is refused, never served as TCP.
@Suite(.serialized) struct QueryAPIValidation {
    func post(_ form: [(String, String)], to admin: IPEndpoint) throws -> (Int, String) {
        let body = (form + [("Version", "2015-12-01")]).map { "\($0.0)=\(SigV4.encode($0.1))" }.joined(separator: "&")
        return try ControlCommand.send(
            method: "POST", path: "/", body: body,
            headers: [("Host", admin.description), ("Content-Type", "application/x-www-form-urlencoded")], to: admin)
    }

    @Test func createRefusesWhatTheFileRefusesAndNamesIt() throws {
        let server = try TestServer()
        let lb = try RunningBalancer.withControlAPI(to: server)
        defer { lb.stop() }
        let admin = lb.adminEndpoint!
        let group = [("Action", "CreateTargetGroup"), ("Protocol", "TCP"), ("TargetType", "ip")]
        let (port, portText) = try post(group + [("Name", "p"), ("Port", "70000")], to: admin)
        // AWS's front end's words, before the action runs.
        #expect(
            port == 400
                && portText.contains(
                    "<Message>1 validation error detected: Value &apos;70000&apos; at &apos;port&apos; failed to satisfy "
                        + "constraint: Member must have value less than or equal to 65535</Message>"),
            "\(portText)")
        let (interval, intervalText) = try post(
            group + [("Name", "hc"), ("Port", "0"), ("HealthCheckIntervalSeconds", "1")], to: admin)
        #expect(
            interval == 400
                && intervalText.contains(
                    "2 validation errors detected: Value &apos;0&apos; at &apos;port&apos; failed to satisfy constraint: "
                        + "Member must have value greater than or equal to 1; Value &apos;1&apos; at "
                        + "&apos;healthCheckIntervalSeconds&apos; failed"),
            "\(intervalText)")
        for name in ["bad-", "-bad", "a_b", String(repeating: "n", count: 33)] {
            let (status, text) = try post(group + [("Name", name), ("Port", "80")], to: admin)
            #expect(status == 400 && text.contains("CreateTargetGroup.Name"), "\(name)")
        }
        // Nothing of the refused ones was made.
        let (_, described) = try post([("Action", "DescribeTargetGroups")], to: admin)
        #expect(!described.contains("<TargetGroupName>bad-<") && !described.contains("<TargetGroupName>p<"))

        let names = ResourceNames(region: "us-east-1", accountID: "000000000000")
        let listener = [
            ("Action", "CreateListener"), ("LoadBalancerArn", names.loadBalancer("test-nlb")),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", names.targetGroup("tg")),
        ]
        let free = try closedPort()
        for (proto, says) in [
            ("TLS", "CreateListener.Certificates: missing"),
            ("HTTP", "Listener protocol &apos;HTTP&apos; must be one of &apos;TCP_UDP, UDP, TLS, TCP&apos;"),
        ] {
            let (status, text) = try post(listener + [("Protocol", proto), ("Port", "\(free)")], to: admin)
            #expect(status == 400 && text.contains(says), "\(proto): \(text)")
            // No port was opened for it.
            #expect(throws: (any Error).self) { try TestSocket.connect(to: IPEndpoint(ip: loopback, port: free)) }
        }
        let (_, listeners) = try post(
            [("Action", "DescribeListeners"), ("LoadBalancerArn", names.loadBalancer("test-nlb"))], to: admin)
        let arn = try #require(
            listeners.split(separator: "<ListenerArn>").dropFirst().first?.split(separator: "<").first)
        let (modify, modifyText) = try post(
            [("Action", "ModifyListener"), ("ListenerArn", String(arn)), ("Protocol", "TLS")], to: admin)
        #expect(modify == 400 && modifyText.contains("ModifyListener.Certificates: missing"))
        let (_, after) = try post(
            [("Action", "DescribeListeners"), ("LoadBalancerArn", names.loadBalancer("test-nlb"))], to: admin)
        #expect(after.contains("<Protocol>TCP</Protocol>") && !after.contains("<Protocol>TLS</Protocol>"))
    }
}
