import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// What no request may do to the daemon: crash it, replay a signature over another body, read a
/// secret, or drive it from a web page (a cross-origin form, a rebound DNS name).
@Suite(.serialized) struct ControlAddressSecurity {
    static let keyID = "AKIDLOCALNLBTEST0001"
    static let secret = "local-secret-key-for-tests-0123"

    /// A balancer with one target group `tg`, its control API on an ephemeral port, `admin` edited.
    func start(_ edit: (inout AdminConfiguration) -> Void = { _ in }) throws -> (RunningBalancer, IPEndpoint) {
        let lb = try RunningBalancer.withControlAPI(to: try TestServer(), edit)
        return (lb, lb.adminEndpoint!)
    }

    /// One raw request with exactly these headers (plus `Host` unless given); the status and the body.
    func raw(
        _ method: String, _ path: String, body: String = "", headers: [(String, String)] = [],
        to endpoint: IPEndpoint
    ) throws -> (Int, String) {
        var all = headers
        if !all.contains(where: { $0.0.lowercased() == "host" }) { all.insert(("Host", endpoint.description), at: 0) }
        return try ControlCommand.send(method: method, path: path, body: body, headers: all, to: endpoint)
    }

    static let json = [("Content-Type", "application/json")]
    static let form = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]

    // MARK: Nothing crashes it

    @Test func anExpiresInPastAnyBoundIsRefusedNotAnOverflow() throws {
        #expect(Configuration.expiresIn("3000000000000000h") == nil)
        #expect(Configuration.expiresIn("9223372036854775807m") == nil)
        #expect(Configuration.expiresIn("72h") == 72 * 3600)
        #expect(Configuration.expiresIn("4320m") == 3 * 86400)
        #expect(Configuration.expiresIn("4321m") == nil)
        let (lb, admin) = try start()
        defer { lb.stop() }
        let body = #"{"resourceIdentifier":"x","awayFrom":"a","expiresIn":"3000000000000000h"}"#
        let (status, text) = try raw("POST", "/zonalshifts", body: body, headers: Self.json, to: admin)
        #expect(status == 400 && text.contains("InvalidExpiresIn"))
        #expect(try raw("GET", "/status", to: admin).0 == 200)
    }

    // MARK: SigV4 binds the body

    @Test func aCapturedSignatureDoesNotCarryAnotherBody() throws {
        let (lb, admin) = try start {
            $0.accessKeyID = Self.keyID
            $0.secretAccessKey = Self.secret
        }
        defer { lb.stop() }
        let environment = ["AWS_ACCESS_KEY_ID": Self.keyID, "AWS_SECRET_ACCESS_KEY": Self.secret]
        let describe = "Action=DescribeTargetGroups&Version=2015-12-01"
        let deregister =
            "Action=DeregisterTargets&Version=2015-12-01&TargetGroupArn="
            + SigV4.encode(ResourceNames(region: "us-east-1", accountID: "000000000000").targetGroup("tg"))
            + "&Targets.member.1.Id=127.0.0.1"
        for claimsHash in [false, true] {
            var headers = [("Host", admin.description)] + Self.form
            if claimsHash {
                headers.append(("X-Amz-Content-Sha256", SigV4.hex(SigV4.sha256(Array(describe.utf8)))))
            }
            ClientCredentials(environment: environment, token: nil).authorize(
                method: "POST", path: "/", body: Array(describe.utf8), headers: &headers)
            // The genuine request holds...
            #expect(try raw("POST", "/", body: describe, headers: headers, to: admin).0 == 200)
            // ...and the same headers over another body do not.
            let (status, text) = try raw("POST", "/", body: deregister, headers: headers, to: admin)
            #expect(status == 403)
            #expect(text.contains("<Code>SignatureDoesNotMatch</Code>"))
            #expect(text.contains("x-amz-content-sha256") == claimsHash)
        }
        #expect(lb.logLines.allSatisfy { !$0.contains("deregistered") })
    }

    @Test func aSignatureWithoutHostOrOutsideFifteenMinutesIsRefused() throws {
        let (lb, admin) = try start {
            $0.accessKeyID = Self.keyID
            $0.secretAccessKey = Self.secret
        }
        defer { lb.stop() }
        let body = "Action=DescribeTargetGroups&Version=2015-12-01"
        let stale = "20150830T123600Z"
        let scope = "20150830/us-east-1/elasticloadbalancing/aws4_request"
        let headers = ["content-type": Self.form[0].1, "host": admin.description, "x-amz-date": stale]
        let signature = SigV4.signature(
            SigV4.Request(method: "POST", path: "/", query: [:], headers: headers, body: Array(body.utf8)),
            signedHeaders: ["content-type", "host", "x-amz-date"], amzDate: stale, scope: scope, secret: Self.secret)
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(Self.keyID)/\(scope), SignedHeaders=content-type;host;x-amz-date, "
            + "Signature=\(signature)"
        let (status, text) = try raw(
            "POST", "/", body: body,
            headers: Self.form + [("X-Amz-Date", stale), ("Authorization", authorization)], to: admin)
        #expect(status == 403 && text.contains("Signature expired"))
        let unsignedHost = authorization.replacingOccurrences(of: "content-type;host;x-amz-date", with: "x-amz-date")
        let (hostStatus, hostText) = try raw(
            "POST", "/", body: body,
            headers: Self.form + [("X-Amz-Date", QueryClient.amzNow()), ("Authorization", unsignedHost)], to: admin)
        #expect(hostStatus == 403 && hostText.contains("<Code>IncompleteSignature</Code>"))
    }

    // MARK: One rule for the whole address

    @Test func withKeysEveryPathNeedsThemAndNoSecretIsPrinted() throws {
        let (lb, admin) = try start {
            $0.accessKeyID = Self.keyID
            $0.secretAccessKey = Self.secret
        }
        defer { lb.stop() }
        for (method, path, body) in [
            ("GET", "/config", ""), ("GET", "/flows", ""), ("GET", "/metrics", ""), ("GET", "/target-groups", ""),
            ("POST", "/target-groups/tg/deregister", #"{"Targets":[{"Id":"127.0.0.1"}]}"#),
            ("PUT", "/target-groups/tg/attributes", #"{"Attributes":[]}"#), ("GET", "/zonalshifts", ""),
        ] {
            let (status, _) = try raw(method, path, body: body, headers: Self.json, to: admin)
            #expect(status == 401 || status == 403, "\(method) \(path) answered \(status) unsigned")
        }
        // Signed by `ctl` (the environment's keys), the same calls go through; the secret stays home.
        let signed = ClientCredentials(
            environment: ["AWS_ACCESS_KEY_ID": Self.keyID, "AWS_SECRET_ACCESS_KEY": Self.secret], token: nil)
        let (status, config) = try ControlCommand.send(
            method: "GET", path: "/config", body: nil, to: admin, credentials: signed)
        #expect(status == 200)
        #expect(!config.contains(Self.secret) && config.contains(#""SecretAccessKey": "REDACTED""#))
        #expect(
            try ControlCommand.send(method: "GET", path: "/flows?MaxItems=5", body: nil, to: admin, credentials: signed)
                .0 == 200)
        let outcome = ControlCommand.run(
            ["export-config", "--endpoint-url", "http://\(admin)"],
            environment: ["AWS_ACCESS_KEY_ID": Self.keyID, "AWS_SECRET_ACCESS_KEY": Self.secret])
        #expect(outcome.exitCode == 0 && outcome.error.contains("REDACTED") && !outcome.output.contains(Self.secret))
        // The placeholder never passes for a secret.
        #expect(throws: ConfigurationError.self) {
            try ConfigLoader.load(data: Data(outcome.output.utf8))
        }
    }

    @Test func aTokenClosesEveryAPIAndPublicMetricsOpensOnlyMetrics() throws {
        let token = "token-for-the-tests-0123456789"
        let (lb, admin) = try start {
            $0.token = token
            $0.publicMetrics = true
        }
        defer { lb.stop() }
        #expect(try raw("GET", "/metrics", to: admin).0 == 200)
        #expect(try raw("GET", "/config", to: admin).0 == 401)
        let query = "Action=DescribeTargetGroups&Version=2015-12-01"
        #expect(try raw("POST", "/", body: query, headers: Self.form, to: admin).0 == 403)
        let bearer = [("Authorization", "Bearer \(token)")]
        #expect(try raw("POST", "/", body: query, headers: Self.form + bearer, to: admin).0 == 200)
        #expect(try raw("GET", "/config", headers: bearer, to: admin).1.contains(#""Token": "REDACTED""#))
        // The AWS CLI cannot send a bearer: any key id signing with the token as its secret.
        let outcome = ControlCommand.run(
            ["describe-target-groups", "--endpoint-url", "http://\(admin)"],
            environment: ["AWS_ACCESS_KEY_ID": "AKIDANYTHING00001", "AWS_SECRET_ACCESS_KEY": token])
        #expect(outcome.exitCode == 0, "\(outcome.error)")
        let wrong = ControlCommand.run(
            ["describe-target-groups", "--endpoint-url", "http://\(admin)"],
            environment: ["AWS_ACCESS_KEY_ID": "AKIDANYTHING00001", "AWS_SECRET_ACCESS_KEY": "not-the-token-at-all"])
        #expect(wrong.exitCode == 254 && wrong.error.contains("SignatureDoesNotMatch"))
    }

    // MARK: No driving from a browser

    @Test func aWebPageCannotDriveIt() throws {
        let (lb, admin) = try start()
        defer { lb.stop() }
        let register = #"{"Targets":[{"Id":"127.0.0.1","Port":9999}]}"#
        // A form or fetch() without a preflight can only send text/plain, a form or multipart.
        let (plain, plainText) = try raw(
            "POST", "/target-groups/tg/register", body: register, headers: [("Content-Type", "text/plain")], to: admin)
        #expect(plain == 415 && plainText.contains("application/json"))
        // Any other origin, even on this machine, is refused; the control address's own page is not.
        for origin in ["http://evil.example", "null", "http://127.0.0.1:3000", "https://127.0.0.1:\(admin.port)"] {
            let (status, _) = try raw(
                "POST", "/target-groups/tg/register", body: register, headers: Self.json + [("Origin", origin)],
                to: admin)
            #expect(status == 403, "Origin \(origin)")
        }
        let (query, queryText) = try raw(
            "POST", "/", body: "Action=DescribeTargetGroups&Version=2015-12-01",
            headers: Self.form + [("Origin", "http://evil.example")], to: admin)
        #expect(query == 403 && queryText.contains("<Code>InvalidOrigin</Code>"))
        #expect(
            try raw("GET", "/flows", headers: [("Sec-Fetch-Site", "cross-site")], to: admin).0 == 403)
        #expect(try raw("GET", "/flows", headers: [("Sec-Fetch-Site", "same-site")], to: admin).0 == 403)
        #expect(
            try raw("GET", "/flows", headers: [("Origin", "http://127.0.0.1:\(admin.port)")], to: admin).0 == 200)
        // An <img> can make a browser GET anything: an unsigned GET only reads.
        let arn = SigV4.encode(ResourceNames(region: "us-east-1", accountID: "000000000000").targetGroup("tg"))
        let (get, getText) = try raw(
            "GET", "/?Action=DeregisterTargets&Version=2015-12-01&TargetGroupArn=\(arn)&Targets.member.1.Id=127.0.0.1",
            to: admin)
        #expect(get == 400 && getText.contains("POST it as a form"))
        #expect(try raw("GET", "/?Action=DescribeTargetGroups&Version=2015-12-01", to: admin).0 == 200)
        #expect(lb.logLines.allSatisfy { !$0.contains("registered") || $0.contains("127.0.0.1:\(9999)") == false })
    }

    @Test func aReboundHostNameIsRefused() throws {
        let (lb, admin) = try start { $0.hostNames = ["lb.test"] }
        defer { lb.stop() }
        let (status, text) = try raw("GET", "/status", headers: [("Host", "attacker.example:\(admin.port)")], to: admin)
        #expect(status == 403 && text.contains("Admin.HostNames"))
        for host in [
            "localhost:\(admin.port)", "LOCALHOST", "127.0.0.1:\(admin.port)", "[::1]:\(admin.port)", "lb.test",
        ] {
            #expect(try raw("GET", "/status", headers: [("Host", host)], to: admin).0 == 200, "Host \(host)")
        }
        let (query, queryText) = try raw(
            "POST", "/", body: "Action=DescribeTargetGroups&Version=2015-12-01",
            headers: Self.form + [("Host", "rebound.example")], to: admin)
        #expect(query == 403 && queryText.contains("<Code>InvalidHost</Code>"))
    }

    // MARK: HTTP-level errors in the API's own shape

    @Test func queryAPIErrorsAtTheHTTPLevelAreAWSXML() throws {
        let (lb, admin) = try start()
        defer { lb.stop() }
        let request = "POST / HTTP/1.1\r\nHost: \(admin)\r\nContent-Length: abc\r\n\r\n"
        let (_, status, body) = try BlockingConnection.exchange(Array(request.utf8), with: admin, timeoutSeconds: 5)
        #expect(status == 400)
        #expect(body.contains("<ErrorResponse") && body.contains("<Code>ValidationError</Code>"))
        let huge = "POST / HTTP/1.1\r\nHost: \(admin)\r\nContent-Length: \(AdminRequest.maximumSize + 1)\r\n\r\n"
        let (_, hugeStatus, hugeBody) = try BlockingConnection.exchange(
            Array(huge.utf8), with: admin, timeoutSeconds: 5)
        #expect(hugeStatus == 413 && hugeBody.contains("<Code>RequestEntityTooLarge</Code>"))
        // The JSON API keeps its JSON.
        let json = "POST /target-groups/tg/register HTTP/1.1\r\nHost: \(admin)\r\nContent-Length: x\r\n\r\n"
        let (_, jsonStatus, jsonBody) = try BlockingConnection.exchange(
            Array(json.utf8), with: admin, timeoutSeconds: 5)
        #expect(jsonStatus == 400 && jsonBody.hasPrefix("{"))
    }

    // MARK: Invalid UTF-8 is refused with its path

    @Test func invalidUTF8IsRefusedWithItsPath() throws {
        var file = Array(#"{"TargetGroups":[{"Name":"w"#.utf8) + [0xFF] + Array(#"b","Port":80}]}"#.utf8)
        do {
            _ = try ConfigLoader.load(data: Data(file))
            Issue.record("a file with invalid UTF-8 loaded")
        } catch let error as ConfigurationError {
            #expect(error.problems.count == 1)
            #expect(error.problems[0].contains("TargetGroups[0].Name: not valid UTF-8"))
        }
        file =
            Array(#"{"Listeners":[],"TargetGroups":[{"Name":"web","Port":80}],"#.utf8) + [0xC3] + Array(#"":1}"#.utf8)
        #expect(throws: ConfigurationError.self) { try ConfigLoader.load(data: Data(file)) }

        let (lb, admin) = try start()
        defer { lb.stop() }
        let body = String(decoding: Array(#"{"Targets":[{"Id":"127.0.0.1","#.utf8), as: UTF8.self)
        var bytes = "POST /target-groups/tg/register HTTP/1.1\r\nHost: \(admin)\r\nContent-Type: application/json\r\n"
        let payload = Array(body.utf8) + Array(#""AvailabilityZone":"a"#.utf8) + [0xFE] + Array(#""}]}"#.utf8)
        bytes += "Content-Length: \(payload.count)\r\n\r\n"
        let (_, status, text) = try BlockingConnection.exchange(
            Array(bytes.utf8) + payload, with: admin, timeoutSeconds: 5)
        #expect(status == 400 && text.contains("Targets[0].AvailabilityZone: not valid UTF-8"))
        let form = Array("Action=DescribeTargetGroups&Version=2015-12-01&Names.member.1=w".utf8) + [0xFF]
        var head = "POST / HTTP/1.1\r\nHost: \(admin)\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        head += "Content-Length: \(form.count)\r\n\r\n"
        let (_, formStatus, formText) = try BlockingConnection.exchange(
            Array(head.utf8) + form, with: admin, timeoutSeconds: 5)
        #expect(formStatus == 400 && formText.contains("<Code>MalformedQueryString</Code>"))
        #expect(formText.contains("Names.member.1"))
    }
}

/// A large request costs in proportion to its size, and paging flows reads only the page.
@Suite(.serialized) struct ControlPlaneCosts {
    /// 8,000 targets in one RegisterTargets: one pass, not one scan of the group per target (which took
    /// 42 s in a debug build, past the client's 10 s).
    @Test func eightThousandTargetsRegisterInOneCall() throws {
        let server = try TestServer()
        // Past AWS's quotas (1,000 a group, 3,000 and 500 a zone behind a load balancer), raised as AWS would.
        let lb = try RunningBalancer.withControlAPI(to: server) { admin in
            admin.accountLimits = [
                "targets-per-target-group": 9000, "targets-per-network-load-balancer": 9000,
                "targets-per-availability-zone-per-network-load-balancer": 9000,
            ]
        }
        defer { lb.stop() }
        let api = API(endpoint: lb.adminEndpoint!)
        let targets = (0..<8000).map { #"{"Id":"127.3.\#($0 / 250).\#($0 % 250 + 1)","Port":9000}"# }
        let (status, _) = try api.call(
            "POST", "/target-groups/tg/register", #"{"Targets":[\#(targets.joined(separator: ","))]}"#)
        #expect(status == 200)
        #expect(try api.states().count == 8001)
        // All or none: one malformed target in a deregistration changes nothing.
        let some = targets.prefix(3000).joined(separator: ",")
        let (refused, _) = try api.call(
            "POST", "/target-groups/tg/deregister", #"{"Targets":[\#(some),{"Id":"127.9.9.9","Port":0}]}"#)
        #expect(refused == 400)
        #expect(try api.states().values.filter { $0 == "draining" }.isEmpty)
        // An unknown one beside them is no error (AWS): the 3,000 drain.
        let unknown = #"{"Id":"127.9.9.9","Port":1}"#
        #expect(
            try api.call("POST", "/target-groups/tg/deregister", #"{"Targets":[\#(some),\#(unknown)]}"#).0 == 200)
        #expect(try api.states().values.filter { $0 == "draining" }.count == 3000)
    }

    @Test func flowOrderPagesFromAMarkerAndDropsEndedFlows() {
        var order = FlowOrder()
        var live = Set<UInt64>()
        for id in stride(from: UInt64(1), through: 1000, by: 2) {
            order.append(id: id, slot: Int(id), udp: false)
            live.insert(id)
        }
        #expect(order.firstPosition(after: 0) == 0)
        #expect(order.firstPosition(after: 1) == 1)
        #expect(order.firstPosition(after: 2) == 1)
        #expect(order.firstPosition(after: 999) == 500)
        // End 400 of 500: the ended entries go in passes, and what is left is exactly the live flows.
        for id in stride(from: UInt64(1), through: 800, by: 2) {
            live.remove(id)
            order.flowEnded { live.contains($0.id) }
        }
        #expect(order.entries.count < 500)
        #expect(Set(order.entries.map(\.id)).isSuperset(of: live))
        #expect(order.entries.map(\.id) == order.entries.map(\.id).sorted())
    }
}
