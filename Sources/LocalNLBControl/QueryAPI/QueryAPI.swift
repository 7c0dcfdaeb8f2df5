import Glibc
import LocalNLBDataPlane
import LocalNLBModel

/// The ELBv2 Query API (`POST /` with a form body, or `GET /?Action=…`, `Version=2015-12-01`) on the
/// control API's address, answered in AWS's XML: what the AWS CLI and boto3 send with `--endpoint-url`.
/// Every action reads and edits the same model as the JSON API and the file.
extension ControlPlane {
    static let queryNamespace = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

    package var names: ResourceNames { configuration.names }

    /// A Query API request: `/` with an `Action` (the JSON API has no resource at `/`).
    static func isQueryRequest(_ request: AdminRequest) -> Bool {
        request.path == "/" && (request.method == "POST" || request.method == "GET")
    }

    /// The region a request is for: its SigV4 scope's (`date/region/service/aws4_request`), as AWS
    /// routes it; the home region (`Admin.Region`) for an unsigned one.
    func region(of request: AdminRequest) -> String {
        let scope = SigV4.Authorization(request.headers["authorization"] ?? "")?.scope.split(separator: "/")
        if let scope, scope.count >= 2, ResourceNames.isRegion(String(scope[1])) { return String(scope[1]) }
        if let credential = request.query["X-Amz-Credential"]?.split(separator: "/"), credential.count >= 3,
            ResourceNames.isRegion(String(credential[2]))
        {
            return String(credential[2])
        }
        return names.region
    }

    /// The request's region as the model names it: nil for the home region.
    var requestRegionQualifier: String? { requestRegion == names.region ? nil : requestRegion }

    /// Whether the resource named `internalName` is in the request's region (each region sees its own).
    func inRequestRegion(_ internalName: String) -> Bool { names.region(of: internalName) == requestRegion }

    func queryAPI(_ request: AdminRequest) -> AdminResponse {
        let requestID = Self.requestID()
        queryRegion = region(of: request)
        defer { queryRegion = nil }
        do throws(APIError) {
            let form = request.method == "GET" ? QueryForm(values: request.query) : try QueryForm(form: request.body)
            guard let action = form["Action"] else {
                throw APIError(code: "MissingAction", message: "no Action parameter (Action=DescribeTargetGroups…)")
            }
            if let version = form["Version"], version != "2015-12-01" {
                throw APIError(
                    code: "InvalidAction", message: "version \(version) of Elastic Load Balancing v2 is not 2015-12-01")
            }
            let result = try perform(action: action, form)
            let body =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<\(action)Response xmlns=\"\(Self.queryNamespace)\">"
                + XML.element("\(action)Result", [result])
                + XML.element("ResponseMetadata", [XML.text("RequestId", requestID)]) + "</\(action)Response>\n"
            return AdminResponse(status: 200, body: body, contentType: "text/xml")
        } catch {
            return queryError(error, requestID: requestID)
        }
    }

    /// On an address other than loopback without keys to check signatures against: refused, with
    /// the way out.
    func queryAPIRefusal() -> AdminResponse {
        queryError(
            APIError(
                code: "InvalidClientTokenId",
                message: "this Admin.Address is not loopback: set Admin.AccessKeyId and Admin.SecretAccessKey, "
                    + "and sign with them", status: 403))
    }

    func queryError(_ error: APIError, requestID: String = ControlPlane.requestID()) -> AdminResponse {
        let body =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"\(Self.queryNamespace)\">"
            + XML.element(
                "Error", [XML.text("Type", "Sender"), XML.text("Code", error.code), XML.text("Message", error.message)])
            + XML.text("RequestId", requestID) + "</ErrorResponse>\n"
        return AdminResponse(status: error.status, body: body, contentType: "text/xml")
    }

    /// The ranges AWS's front end checks before an action runs, by parameter, in its words: "1
    /// validation error detected: Value '70000' at 'port' failed to satisfy constraint: Member must
    /// have value less than or equal to 65535".
    static let constraints: [(parameter: String, range: ClosedRange<Int>)] = [
        ("Port", 1...65535), ("HealthCheckIntervalSeconds", 5...300), ("HealthCheckTimeoutSeconds", 2...120),
        ("HealthyThresholdCount", 2...10), ("UnhealthyThresholdCount", 2...10), ("PageSize", 1...400),
    ]

    static func constraintViolations(_ form: QueryForm) -> APIError? {
        var violations: [String] = []
        for (parameter, range) in constraints {
            guard let text = form[parameter], let value = Int(text) else { continue }
            let field = parameter.prefix(1).lowercased() + parameter.dropFirst()
            if value < range.lowerBound {
                violations.append(
                    "Value '\(text)' at '\(field)' failed to satisfy constraint: Member must have value greater than "
                        + "or equal to \(range.lowerBound)")
            } else if value > range.upperBound {
                violations.append(
                    "Value '\(text)' at '\(field)' failed to satisfy constraint: Member must have value less than or "
                        + "equal to \(range.upperBound)")
            }
        }
        guard !violations.isEmpty else { return nil }
        let count = violations.count == 1 ? "1 validation error" : "\(violations.count) validation errors"
        return .validation("\(count) detected: " + violations.joined(separator: "; "))
    }

    package func perform(action: String, _ form: QueryForm) throws(APIError) -> String {
        if let violations = Self.constraintViolations(form) { throw violations }
        switch action {
        case "DescribeLoadBalancers": return try describeLoadBalancers(form)
        case "CreateLoadBalancer": return try createLoadBalancer(form)
        case "DeleteLoadBalancer": return try deleteLoadBalancer(form)
        case "DescribeLoadBalancerAttributes":
            let index = try loadBalancer(form["LoadBalancerArn"])
            return attributeList(
                LoadBalancerAttributes.index(configuration.loadBalancers[index].type).describe(
                    configuration.loadBalancers[index].attributes))
        case "DescribeListeners": return try describeListeners(form)
        case "DescribeListenerAttributes":
            let listener = try self.listener(form["ListenerArn"])
            // An application load balancer's listener has its own table (docs/alb.md §24).
            let shown = configuration.listeners[listener]
            return attributeList(ListenerConfiguration.index(shown.protocolName).describe(shown))
        case "DescribeTargetGroups": return try describeTargetGroups(form)
        case "DescribeTargetGroupAttributes":
            let group = try targetGroup(form["TargetGroupArn"])
            return attributeList(groups[group].configuration.effectiveAttributes)
        case "ModifyTargetGroupAttributes": return try modifyTargetGroupAttributes(form)
        case "DescribeTargetHealth": return try describeTargetHealth(form)
        case "ModifyLoadBalancerAttributes": return try modifyLoadBalancerAttributes(form)
        case "ModifyListenerAttributes": return try modifyListenerAttributes(form)
        case "ModifyTargetGroup": return try modifyTargetGroup(form)
        case "AddTags": return try addTags(form)
        case "RemoveTags": return try removeTags(form)
        case "DescribeTags": return try describeTags(form)
        case "CreateTargetGroup": return try createTargetGroup(form)
        case "DeleteTargetGroup": return try deleteTargetGroup(form)
        case "CreateListener": return try createListener(form)
        case "CreateRule": return try createRule(form)
        case "DescribeRules": return try describeRules(form)
        case "ModifyRule": return try modifyRule(form)
        case "DeleteRule": return try deleteRule(form)
        case "SetRulePriorities": return try setRulePriorities(form)
        case "ModifyListener": return try modifyListener(form)
        case "DeleteListener": return try deleteListener(form)
        case "RegisterTargets": return try changeTargets(form, register: true)
        case "DeregisterTargets": return try changeTargets(form, register: false)
        case "DescribeAccountLimits": return try describeAccountLimits(form)
        case "CreateTrustStore": return try createTrustStore(form)
        case "DescribeTrustStores": return try describeTrustStores(form)
        case "DeleteTrustStore": return try deleteTrustStore(form)
        case "AddTrustStoreRevocations": return try addTrustStoreRevocations(form)
        case "DescribeTrustStoreRevocations": return try describeTrustStoreRevocations(form)
        case "RemoveTrustStoreRevocations": return try removeTrustStoreRevocations(form)
        case "AddListenerCertificates": return try listenerCertificates(form, add: true)
        case "RemoveListenerCertificates": return try listenerCertificates(form, add: false)
        case "DescribeListenerCertificates": return try describeListenerCertificates(form)
        case "DescribeSSLPolicies": return try describeSSLPolicies(form)
        case "SetSecurityGroups": return try setSecurityGroups(form)
        case "SetIpAddressType": return try setIpAddressType(form)
        case "SetSubnets": return try setSubnets(form)
        case "ModifyCapacityReservation": return try modifyCapacityReservation(form)
        case "DescribeCapacityReservation": return capacityReservation(try loadBalancer(form["LoadBalancerArn"]))
        default:
            throw APIError(
                code: "InvalidAction",
                message: "\(action) is not an action of Elastic Load Balancing v2 that localnlb serves")
        }
    }

    /// A request id in AWS's shape (a UUID).
    static func requestID() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<4).map { _ in
            let digits = String(generator.next() as UInt32, radix: 16)
            return String(repeating: "0", count: 8 - digits.count) + digits
        }.joined()
        let characters = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
    }

    // MARK: Finding resources by ARN

    /// The index in `configuration.loadBalancers` of the load balancer with this ARN.
    package func loadBalancer(_ arn: String?) throws(APIError) -> Int {
        guard let arn else { throw .validation("LoadBalancerArn is required") }
        guard arn.hasPrefix("arn:") else { throw .validation("'\(arn)' is not a valid load balancer ARN") }
        guard let name = names.name(in: arn, kind: "loadbalancer/net"), arn == names.loadBalancer(name),
            inRequestRegion(name), let index = configuration.loadBalancerIndex(name)
        else { throw APIError(code: "LoadBalancerNotFound", message: "Load balancer '\(arn)' not found") }
        return index
    }

    package func targetGroup(_ arn: String?) throws(APIError) -> Int {
        guard let arn else { throw .validation("TargetGroupArn is required") }
        guard arn.hasPrefix("arn:") else { throw .validation("'\(arn)' is not a valid target group ARN") }
        guard let name = names.name(in: arn, kind: "targetgroup"), arn == names.targetGroup(name),
            inRequestRegion(name),
            let index = groups.firstIndex(where: { $0.configuration.name == name && !$0.removed })
        else { throw APIError(code: "TargetGroupNotFound", message: "Target groups '\(arn)' not found") }
        return index
    }

    /// The index in `configuration.listeners` of the listener with this ARN.
    package func listener(_ arn: String?) throws(APIError) -> Int {
        guard let arn else { throw .validation("ListenerArn is required") }
        guard
            let index = configuration.listeners.firstIndex(where: {
                names.listener(loadBalancer: $0.loadBalancerName, port: $0.port) == arn
                    && inRequestRegion($0.loadBalancerName)
            })
        else { throw APIError(code: "ListenerNotFound", message: "Listener '\(arn)' not found") }
        return index
    }

    /// The load balancers whose listeners forward to the group (a network load balancer's group has
    /// at most one).
    package func loadBalancers(of group: Int) -> [String] {
        configuration.loadBalancers(forwardingTo: groups[group].configuration.name)
    }

    /// Whether a listener forwards to the group (else its targets are `unused`, `Target.NotInUse`).
    func isInUse(_ group: Int) -> Bool { !loadBalancers(of: group).isEmpty }

    /// `Marker` and `PageSize` (1–400) over `items`: the page, and the marker of the next one.
    package func page<T>(_ items: [T], _ form: QueryForm) throws(APIError) -> ([T], String?) {
        var size = 400
        if let text = form["PageSize"] {
            guard let value = Int(text), (1...400).contains(value) else {
                throw .validation("PageSize \(text): must be between 1 and 400")
            }
            size = value
        }
        var start = 0
        if let marker = form["Marker"] {
            guard let value = Int(marker), (0...items.count).contains(value) else {
                throw .validation("Marker \(marker): not a NextMarker this API returned")
            }
            start = value
        }
        let end = min(items.count, start + size)
        return (Array(items[start..<end]), end < items.count ? String(end) : nil)
    }

    package func attributeList(_ attributes: [(key: String, value: String)]) -> String {
        XML.list("Attributes", attributes.map { XML.text("Key", $0.key) + XML.text("Value", $0.value) })
    }
}
