import LocalNLBDataPlane
import LocalNLBModel

/// The Query API actions that create, change and delete listeners and target groups: decoders of the
/// form into a `Change` for `commit` (the file's validator checks it, under AWS's ranges), and
/// encoders of what it made.
extension ControlPlane {
    /// Form parameters as the JSON the file has, so one validator reads both (AWS's names are the
    /// file's keys): `Matcher.HttpCode` nests, `Tags.member.N.Key` is a list.
    package func document(_ form: QueryForm, keys: [String]) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for key in keys {
            if let value = form[key] { object[key] = .string(value) }
        }
        if let code = form["Matcher.HttpCode"] { object["Matcher"] = .object(["HttpCode": .string(code)]) }
        let tags = form.structures("Tags", fields: ["Key", "Value"])
        if !tags.isEmpty { object["Tags"] = .array(tags.map { .object($0.mapValues { .string($0) }) }) }
        return .object(object)
    }

    // MARK: Target groups

    package func createTargetGroup(_ form: QueryForm) throws(APIError) -> String {
        let keys = [
            "Name", "Protocol", "Port", "VpcId", "TargetType", "IpAddressType", "HealthCheckEnabled",
            "HealthCheckProtocol", "HealthCheckPort", "HealthCheckPath", "HealthCheckIntervalSeconds",
            "HealthCheckTimeoutSeconds", "HealthyThresholdCount", "UnhealthyThresholdCount",
        ]
        guard let shown = form["Name"] else { throw .validation("Name is required") }
        try commit(
            .createTargetGroup(Given("CreateTargetGroup", document(form, keys: keys)), region: requestRegionQualifier))
        let name = names.qualified(shown, region: requestRegionQualifier)
        let index = groups.firstIndex { $0.configuration.name == name && !$0.removed }!
        return XML.list("TargetGroups", [targetGroupMember(index)])
    }

    package func deleteTargetGroup(_ form: QueryForm) throws(APIError) -> String {
        let index = try targetGroup(form["TargetGroupArn"])
        try commit(.deleteTargetGroup(name: groups[index].configuration.name))
        return ""
    }

    // MARK: Listeners

    /// The listener a form describes, in the file's shape (CreateListener, or ModifyListener over
    /// `base`: what the form leaves out stays).
    func listenerDocument(_ form: QueryForm, base: ListenerConfiguration?) throws(APIError) -> JSONValue {
        var object: [String: JSONValue] = [:]
        if let port = form["Port"] ?? base.map({ String($0.port) }) { object["Port"] = .string(port) }
        if let value = form["Protocol"] ?? base?.protocolName.rawValue { object["Protocol"] = .string(value) }
        let tags = form.structures("Tags", fields: ["Key", "Value"])
        if !tags.isEmpty { object["Tags"] = .array(tags.map { .object($0.mapValues { .string($0) }) }) }
        // TLS: what the form gives, else (ModifyListener) what the listener has.
        let certificates = form.structures("Certificates", fields: ["CertificateArn", "IsDefault"])
        if certificates.count > 1 {
            throw .validation(
                "Certificates: a listener takes exactly one here, its default; add more with AddListenerCertificates")
        }
        if let given = certificates.first?["CertificateArn"] {
            // ModifyListener sets the default; the SNI list stays.
            let rest = (base?.certificateArns.dropFirst() ?? []).filter { $0 != given }
            object["Certificates"] = .array(([given] + rest).map { .object(["CertificateArn": .string($0)]) })
        } else if let base, !base.certificateArns.isEmpty {
            object["Certificates"] = .array(base.certificateArns.map { .object(["CertificateArn": .string($0)]) })
        }
        if let policy = form["SslPolicy"] ?? base?.sslPolicy { object["SslPolicy"] = .string(policy) }
        if let alpn = form.list("AlpnPolicy").first ?? base?.alpnPolicy { object["AlpnPolicy"] = .string(alpn) }
        if let mode = form["MutualAuthentication.Mode"] {
            var mutual: [String: JSONValue] = ["Mode": .string(mode)]
            if let arn = form["MutualAuthentication.TrustStoreArn"] { mutual["TrustStoreArn"] = .string(arn) }
            if let ignore = form["MutualAuthentication.IgnoreClientCertificateExpiry"] {
                mutual["IgnoreClientCertificateExpiry"] = .string(ignore)
            }
            let filters = form.structures(
                "MutualAuthentication.ClientCertificateIdentityFilters",
                fields: ["Action", "Field", "MatchType", "Value"])
            if !filters.isEmpty {
                mutual["ClientCertificateIdentityFilters"] = .array(
                    filters.map { .object($0.mapValues { .string($0) }) })
            }
            object["MutualAuthentication"] = .object(mutual)
        } else if let mutual = base?.mutualAuthentication {
            object["MutualAuthentication"] = .object([
                "Mode": .string("verify"), "TrustStoreArn": .string(names.trustStore(mutual.trustStoreName)),
                "IgnoreClientCertificateExpiry": .bool(mutual.ignoreClientCertificateExpiry),
                "ClientCertificateIdentityFilters": .array(mutual.identityFilters.map(Self.filterJSON)),
            ])
        }
        let actions = form.structures("DefaultActions", fields: ["Type", "TargetGroupArn", "Order"])
        if let tree = form.tree("DefaultActions") {
            for action in actions {
                if let arn = action["TargetGroupArn"] { _ = try targetGroup(arn) }
            }
            // Nested configs (RedirectConfig, FixedResponseConfig, ForwardConfig) come through whole.
            object["DefaultActions"] = tree
        } else if let base {
            let kept = base.defaultAction?.document.rendered
            let value = kept.flatMap { try? JSONParser.parse(Array($0.utf8)).value }
            object["DefaultActions"] = .array([
                value ?? .object(["Type": .string("forward"), "TargetGroupName": .string(base.targetGroupName)])
            ])
        }
        return .object(object)
    }

    static func filterJSON(_ filter: MutualAuthentication.IdentityFilter) -> JSONValue {
        .object([
            "Action": .string("accept"), "Field": .string(filter.field),
            "MatchType": .string(filter.prefix ? "prefix" : "exact"), "Value": .string(filter.value),
        ])
    }

    func listenerMember(_ index: Int) -> String {
        describeListenerMembers([index])[0]
    }

    package func createListener(_ form: QueryForm) throws(APIError) -> String {
        let balancer = configuration.loadBalancers[try loadBalancer(form["LoadBalancerArn"])].name
        let document = try listenerDocument(form, base: nil)
        try commit(.createListener(loadBalancer: balancer, Given("CreateListener", document)))
        // The validator took the port as given (a whole number from 1 to 65535), else it refused.
        let port = form["Port"].flatMap { UInt16($0) }
        let index = configuration.listeners.firstIndex { $0.loadBalancerName == balancer && $0.port == port }!
        return XML.list("Listeners", [listenerMember(index)])
    }

    package func modifyListener(_ form: QueryForm) throws(APIError) -> String {
        let old = configuration.listeners[try listener(form["ListenerArn"])]
        let document = try listenerDocument(form, base: old)
        try commit(
            .modifyListener(loadBalancer: old.loadBalancerName, port: old.port, Given("ModifyListener", document)))
        let port = form["Port"].flatMap { UInt16($0) } ?? old.port
        let index = configuration.listeners.firstIndex {
            $0.loadBalancerName == old.loadBalancerName && $0.port == port
        }!
        return XML.list("Listeners", [listenerMember(index)])
    }

    /// Closes the port on every node; the flows it carried are reset, as when AWS deletes a listener.
    package func deleteListener(_ form: QueryForm) throws(APIError) -> String {
        let gone = configuration.listeners[try listener(form["ListenerArn"])]
        try commit(.deleteListener(loadBalancer: gone.loadBalancerName, port: gone.port))
        return ""
    }
}
