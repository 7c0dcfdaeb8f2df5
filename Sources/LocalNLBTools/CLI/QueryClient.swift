import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// `ctl`'s side of the ELBv2 Query API: a form POSTed to `/` (signed with SigV4 when AWS keys are in
/// the environment, as the AWS CLI signs), and the XML answer read back into the JSON the AWS CLI
/// prints.
package enum QueryClient {
    /// What came back: the result as JSON, or AWS's error code and message.
    package enum Answer {
        case result(JSONText)
        case error(code: String, message: String)
    }

    package static func call(
        _ form: [(String, String)], endpoint: IPEndpoint, environment: [String: String]
    ) throws -> Answer {
        let body = form.map { "\(SigV4.encode($0.0))=\(SigV4.encode($0.1))" }.joined(separator: "&")
        var headers: [(String, String)] = [
            ("Host", endpoint.description), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ]
        // The Query API is signed with keys, as the AWS CLI signs it (the token is for the JSON API).
        var credentials = ClientCredentials(environment: environment, token: nil)
        credentials.service = "elasticloadbalancing"
        credentials.authorize(method: "POST", path: "/", body: Array(body.utf8), headers: &headers)
        let (status, text) = try ControlCommand.send(
            method: "POST", path: "/", body: body, headers: headers, to: endpoint)
        guard let root = XMLReader.parse(text) else {
            throw ControlCommand.Failure(
                message: "the answer from http://\(endpoint)/ (HTTP \(status)) is not the ELBv2 API's XML: "
                    + String(text.prefix(200)), exitCode: 255)
        }
        if root.name == "ErrorResponse" {
            let error = root.child("Error")
            return .error(
                code: error?.child("Code")?.text ?? "HTTP\(status)", message: error?.child("Message")?.text ?? "")
        }
        let result = root.children.first { $0.name.hasSuffix("Result") }
        return .result(result.map { json($0) } ?? .object([]))
    }

    /// `20261124T101500Z`
    static func amzNow() -> String {
        let stamp = rfc3339Now()  // 2026-11-24T10:15:00.123Z
        let digits = stamp.prefix(19).filter { $0 != "-" && $0 != ":" }
        return digits + "Z"
    }

    // MARK: XML → the AWS CLI's JSON

    /// Lists that may come back empty (`<LoadBalancerArns/>` is `[]`, not `""`).
    static let listNames: Set<String> = [
        "LoadBalancers", "TargetGroups", "Listeners", "AvailabilityZones", "LoadBalancerAddresses",
        "LoadBalancerArns", "DefaultActions", "Attributes", "Tags", "TagDescriptions", "TargetHealthDescriptions",
        "SecurityGroups", "Certificates", "SecurityGroupIds", "CapacityReservationState", "Limits", "SslPolicies",
        "Ciphers", "SslProtocols", "SupportedLoadBalancerTypes", "TrustStores", "AlpnPolicy",
        "ClientCertificateIdentityFilters", "TrustStoreRevocations", "Rules", "Conditions", "Actions", "Values",
    ]
    static let integers: Set<String> = [
        "Port", "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount",
        "UnhealthyThresholdCount", "Weight", "Order", "DurationSeconds", "Priority", "CapacityUnits",
        "DecreaseRequestsRemaining", "NumberOfCaCertificates", "TotalRevokedEntries",
        "RevocationId", "NumberOfRevokedEntries",
    ]
    /// Doubles, printed as the AWS CLI prints a float (`1500.0`).
    static let doubles: Set<String> = ["EffectiveCapacityUnits"]
    static let booleans: Set<String> = ["HealthCheckEnabled", "Enabled", "IsDefault", "IgnoreClientCertificateExpiry"]

    /// `parent`: the element this one is in (a redirect's `Port` is text, as the AWS CLI prints it; a rule's
    /// `Priority` is text everywhere).
    package static func json(_ element: XMLReader.Element, parent: String = "") -> JSONText {
        if !element.children.isEmpty && element.children.allSatisfy({ $0.name == "member" }) {
            return .array(
                element.children.map { member in
                    member.children.isEmpty ? .string(member.text) : json(member, parent: element.name)
                })
        }
        if element.children.isEmpty {
            if listNames.contains(element.name) { return .array([]) }
            // A redirect's Port and a rule's Priority are text in AWS's model; a cipher's Priority a number.
            let text = parent == "RedirectConfig" || (parent == "Rule" && element.name == "Priority")
            if integers.contains(element.name) && !text, let value = Int64(element.text) {
                return .integer(value)
            }
            if booleans.contains(element.name) { return .bool(element.text == "true") }
            if doubles.contains(element.name), let value = Double(element.text) { return .number(value) }
            return .string(element.text)
        }
        let kind = element.children.contains { $0.name == "RuleArn" } ? "Rule" : element.name
        return .object(element.children.map { ($0.name, json($0, parent: kind)) })
    }
}

/// Just enough XML for the Query API's answers: elements, text, the five entities; attributes and the
/// declaration are skipped.
package enum XMLReader {
    package final class Element {
        package let name: String
        package var children: [Element] = []
        package var text = ""

        package init(name: String) { self.name = name }
        package func child(_ name: String) -> Element? { children.first { $0.name == name } }
    }

    package static func parse(_ text: String) -> Element? {
        let bytes = Array(text.utf8)
        var index = 0
        var stack: [Element] = []
        var root: Element?
        var pending: [UInt8] = []
        while index < bytes.count {
            if bytes[index] != UInt8(ascii: "<") {
                pending.append(bytes[index])
                index += 1
                continue
            }
            guard let close = bytes[index...].firstIndex(of: UInt8(ascii: ">")) else { return nil }
            let tag = Array(bytes[(index + 1)..<close])
            index = close + 1
            if tag.first == UInt8(ascii: "?") || tag.first == UInt8(ascii: "!") { continue }
            if tag.first == UInt8(ascii: "/") {
                guard let element = stack.popLast() else { return nil }
                if element.children.isEmpty { element.text = unescape(pending) }
                pending = []
                if stack.isEmpty { root = element }
                continue
            }
            pending = []
            let selfClosing = tag.last == UInt8(ascii: "/")
            let nameEnd = tag.firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "/") } ?? tag.count
            let element = Element(name: String(decoding: tag[..<nameEnd], as: UTF8.self))
            stack.last?.children.append(element)
            if selfClosing {
                if stack.isEmpty { root = element }
            } else {
                stack.append(element)
            }
        }
        return stack.isEmpty ? root : nil
    }

    static func unescape(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// How `ctl` proves who it is to a daemon with `Admin.Token` or keys set: the token as a bearer
/// (`--token`, `LOCALNLB_TOKEN`), else a SigV4 signature with the environment's AWS keys, as the AWS
/// CLI signs. With neither, requests go unsigned (a loopback daemon without credentials takes them).
package struct ClientCredentials {
    package var token: String?
    package var accessKeyID: String?
    package var secretAccessKey: String?
    package var region: String
    package var service = "localnlb"

    package init(environment: [String: String], token: String?) {
        self.token = token
        accessKeyID = environment["AWS_ACCESS_KEY_ID"]
        secretAccessKey = environment["AWS_SECRET_ACCESS_KEY"]
        region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
    }

    /// Adds `Authorization` (and `X-Amz-Date` when signing) to `headers`, which hold `Host` and, with a
    /// body, `Content-Type`. `path` may carry a query string; it is signed as the daemon reads it.
    func authorize(method: String, path: String, body: [UInt8], headers: inout [(String, String)]) {
        if let token {
            headers.append(("Authorization", "Bearer \(token)"))
            return
        }
        guard let key = accessKeyID, let secret = secretAccessKey else { return }
        let amzDate = QueryClient.amzNow()
        headers.append(("X-Amz-Date", amzDate))
        let lower = Dictionary(headers.map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { a, _ in a })
        let signedHeaders = lower.keys.sorted()
        let scope = "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
        let parts = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        // Read as the daemon reads it (`AdminRequest.parse`), so both sign the same parameters.
        let query = parts.count == 2 ? (try? QueryForm(form: Array(parts[1].utf8)).values) ?? [:] : [:]
        let signature = SigV4.signature(
            SigV4.Request(method: method, path: String(parts[0]), query: query, headers: lower, body: body),
            signedHeaders: signedHeaders, amzDate: amzDate, scope: scope, secret: secret)
        headers.append(
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=\(key)/\(scope), SignedHeaders=\(signedHeaders.joined(separator: ";")), "
                    + "Signature=\(signature)"
            ))
    }
}
