import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// The actions of the Query API, each with the fields AWS documents for a network load balancer.
extension ControlPlane {
    // MARK: Load balancers and listeners

    func describeListeners(_ form: QueryForm) throws(APIError) -> String {
        var chosen = Array(configuration.listeners.indices)
        let arns = form.list("ListenerArns")
        if !arns.isEmpty {
            chosen = try arns.map { arn throws(APIError) in try listener(arn) }
        } else if form["LoadBalancerArn"] != nil {
            let name = configuration.loadBalancers[try loadBalancer(form["LoadBalancerArn"])].name
            chosen = chosen.filter { configuration.listeners[$0].loadBalancerName == name }
        } else {
            throw .validation("You must specify either listener ARNs or a load balancer ARN")
        }
        let (page, next) = try page(describeListenerMembers(chosen), form)
        return XML.list("Listeners", page) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    func describeListenerMembers(_ chosen: [Int]) -> [String] {
        chosen.map { index in
            let listener = configuration.listeners[index]
            let lb = listener.loadBalancerName
            let group = names.targetGroup(listener.targetGroupName)
            let forward = XML.element(
                "ForwardConfig",
                [
                    XML.list("TargetGroups", [XML.text("TargetGroupArn", group) + XML.text("Weight", "1")]),
                    XML.element("TargetGroupStickinessConfig", [XML.text("Enabled", "false")]),
                ])
            // In the order of AWS's Listener shape (the AWS CLI prints members so): certificates and the
            // policy before the actions, ALPN and mutual authentication after them.
            let tls = listener.protocolName == .tls
            let https = listener.protocolName == .https
            var fields =
                XML.text("ListenerArn", names.listener(loadBalancer: lb, port: listener.port))
                + XML.text("LoadBalancerArn", names.loadBalancer(lb)) + XML.text("Port", String(listener.port))
                + XML.text("Protocol", listener.protocolName.rawValue)
            if tls || https {
                fields +=
                    XML.list("Certificates", listener.certificateArns.prefix(1).map { XML.text("CertificateArn", $0) })
                    + XML.text("SslPolicy", listener.sslPolicy ?? SSLPolicy.defaultName)
            }
            if let action = listener.defaultAction {
                fields += XML.list("DefaultActions", [actionMember(action)])
            } else {
                fields += XML.list(
                    "DefaultActions", [XML.text("Type", "forward") + XML.text("TargetGroupArn", group) + forward])
            }
            if tls {
                fields += XML.list("AlpnPolicy", [XML.escape(listener.alpnPolicy ?? "None")])
                fields += XML.element(
                    "MutualAuthentication",
                    listener.mutualAuthentication.map { mutual in
                        [
                            XML.text("Mode", "verify"),
                            XML.text("TrustStoreArn", names.trustStore(mutual.trustStoreName)),
                            XML.text("IgnoreClientCertificateExpiry", String(mutual.ignoreClientCertificateExpiry)),
                            XML.list(
                                "ClientCertificateIdentityFilters",
                                mutual.identityFilters.map { filter in
                                    XML.text("Action", "accept") + XML.text("Field", filter.field)
                                        + XML.text("MatchType", filter.prefix ? "prefix" : "exact")
                                        + XML.text("Value", filter.value)
                                }),
                        ]
                    } ?? [XML.text("Mode", "off")])
            }
            return fields
        }
    }

    func listenerCertificates(_ form: QueryForm, add: Bool) throws(APIError) -> String {
        let listener = configuration.listeners[try self.listener(form["ListenerArn"])]
        let arns = form.structures("Certificates", fields: ["CertificateArn", "IsDefault"]).compactMap {
            $0["CertificateArn"]
        }
        try commit(
            add
                ? .addListenerCertificates(loadBalancer: listener.loadBalancerName, port: listener.port, arns: arns)
                : .removeListenerCertificates(loadBalancer: listener.loadBalancerName, port: listener.port, arns: arns))
        guard add else { return "" }
        return XML.list(
            "Certificates", arns.map { XML.text("CertificateArn", $0) + XML.text("IsDefault", "false") })
    }

    func describeListenerCertificates(_ form: QueryForm) throws(APIError) -> String {
        let listener = configuration.listeners[try self.listener(form["ListenerArn"])]
        let members = listener.certificateArns.enumerated().map { index, arn in
            XML.text("CertificateArn", arn) + XML.text("IsDefault", String(index == 0))
        }
        let (page, next) = try page(members, form)
        return XML.list("Certificates", page) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    // MARK: Target groups

    func describeTargetGroups(_ form: QueryForm) throws(APIError) -> String {
        var chosen = groups.indices.filter { !groups[$0].removed && inRequestRegion(groups[$0].configuration.name) }
        let arns = form.list("TargetGroupArns")
        let wantedNames = form.list("Names")
        if !arns.isEmpty {
            chosen = try arns.map { arn throws(APIError) in try targetGroup(arn) }
        } else if !wantedNames.isEmpty {
            chosen = try wantedNames.map { shown throws(APIError) in
                let name = names.qualified(shown, region: requestRegionQualifier)
                guard let index = groups.firstIndex(where: { $0.configuration.name == name && !$0.removed }) else {
                    throw APIError(code: "TargetGroupNotFound", message: "One or more target groups not found")
                }
                return index
            }
        } else if form["LoadBalancerArn"] != nil {
            let name = configuration.loadBalancers[try loadBalancer(form["LoadBalancerArn"])].name
            chosen = chosen.filter { loadBalancers(of: $0).contains(name) }
        }
        let (page, next) = try page(chosen.map(targetGroupMember), form)
        return XML.list("TargetGroups", page) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    func targetGroupMember(_ index: Int) -> String {
        targetGroupMember(groups[index].configuration, loadBalancers: loadBalancers(of: index))
    }

    func targetGroupMember(_ group: TargetGroupConfiguration, loadBalancers: [String]) -> String {
        let check = group.healthCheck
        var fields = [
            XML.text("TargetGroupArn", names.targetGroup(group.name)),
            XML.text("TargetGroupName", ResourceNames.shown(group.name)),
            XML.text("Protocol", group.protocolName.rawValue), XML.text("Port", String(group.port)),
            XML.text("VpcId", group.vpcID ?? names.vpcID),
            XML.text("HealthCheckProtocol", check.protocolName.rawValue),
            XML.text("HealthCheckPort", check.port.map(String.init) ?? "traffic-port"),
            XML.text("HealthCheckEnabled", String(check.enabled)),
            XML.text("HealthCheckIntervalSeconds", String(check.intervalSeconds)),
            XML.text("HealthCheckTimeoutSeconds", String(check.timeoutSeconds)),
            XML.text("HealthyThresholdCount", String(check.healthyThreshold)),
            XML.text("UnhealthyThresholdCount", String(check.unhealthyThreshold)),
        ]
        if check.protocolName.isHTTP {
            let codes = check.matcher.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            fields.append(XML.text("HealthCheckPath", check.path))
            fields.append(XML.element("Matcher", [XML.text("HttpCode", codes.joined(separator: ","))]))
        }
        fields += [
            XML.list("LoadBalancerArns", loadBalancers.map { XML.escape(names.loadBalancer($0)) }),
            XML.text("TargetType", group.targetType.rawValue),
            XML.text(
                "IpAddressType", group.ipAddressType ?? (group.targets.first?.address.isIPv6 == true ? "ipv6" : "ipv4")),
        ]
        return fields.joined()
    }

    /// Changed keys only, under AWS's ranges (the file only warns about values outside them).
    package func modifyTargetGroupAttributes(_ form: QueryForm) throws(APIError) -> String {
        let index = try targetGroup(form["TargetGroupArn"])
        try commit(
            .modifyTargetGroupAttributes(name: groups[index].configuration.name, attributes: try attributeChanges(form))
        )
        return attributeList(groups[index].configuration.effectiveAttributes)
    }

    // MARK: Targets

    func describeTargetHealth(_ form: QueryForm) throws(APIError) -> String {
        let index = try targetGroup(form["TargetGroupArn"])
        let group = groups[index]
        let port = group.configuration.healthCheck.port
        let inUse = isInUse(index)
        func description(
            id: String, targetPort: UInt16, state: String, reason: TargetHealthReason?, detail: String? = nil,
            zone: String? = nil
        ) -> String {
            var health = [XML.text("State", state)]
            if let reason {
                health += [XML.text("Reason", reason.rawValue), XML.text("Description", detail ?? reason.description)]
            }
            var fields = [XML.text("Id", id), XML.text("Port", String(targetPort))]
            if let zone {
                let balancer = loadBalancers(of: index).first ?? group.configuration.name
                fields.append(XML.text("AvailabilityZone", zone == "all" ? zone : shownZone(zone, of: balancer)))
            }
            return XML.element("Target", fields)
                + XML.text("HealthCheckPort", String(port ?? targetPort)) + XML.element("TargetHealth", health)
        }
        func describe(_ target: Target) -> String {
            let zone = target.availabilityZone
            guard inUse else {
                return description(
                    id: target.id, targetPort: target.endpoint.port, state: "unused", reason: .notInUse, zone: zone)
            }
            if isOutsideZones(index, target) {
                return description(
                    id: target.id, targetPort: target.endpoint.port, state: "unused", reason: .notInUse,
                    detail: TargetHealthReason.zoneNotEnabled, zone: zone)
            }
            return description(
                id: target.id, targetPort: target.endpoint.port, state: target.state.rawValue, reason: target.reason,
                zone: zone)
        }
        let registered = group.targets.filter { $0.state != .unused }
        let wanted = form.structures("Targets", fields: ["Id", "Port", "AvailabilityZone"])
        guard !wanted.isEmpty else {
            return XML.list("TargetHealthDescriptions", registered.map(describe))
        }
        let members = try wanted.map { item throws(APIError) -> String in
            guard let id = item["Id"] else { throw .validation("Targets.member.N.Id is required") }
            let targetPort =
                try item["Port"].map { text throws(APIError) -> UInt16 in
                    guard let value = UInt16(text), value > 0 else { throw .validation("Port \(text): not 1-65535") }
                    return value
                } ?? group.configuration.port
            if let target = registered.first(where: { $0.id == id && $0.endpoint.port == targetPort }) {
                return describe(target)
            }
            // AWS: a target that is not registered is `unused`, Target.NotRegistered (boto3's
            // target_deregistered waiter waits for exactly this).
            return description(id: id, targetPort: targetPort, state: "unused", reason: .notRegistered)
        }
        return XML.list("TargetHealthDescriptions", members)
    }

    /// RegisterTargets / DeregisterTargets: every target checked before any changes.
    func changeTargets(_ form: QueryForm, register: Bool) throws(APIError) -> String {
        let name = groups[try targetGroup(form["TargetGroupArn"])].configuration.name
        let given = form.structures("Targets", fields: ["Id", "Port", "AvailabilityZone"])
        guard !given.isEmpty else { throw .validation("Targets is required") }
        let targets = given.enumerated().map { position, item in
            Given("Targets.member.\(position + 1)", .object(item.mapValues { .string($0) }))
        }
        try commit(
            register
                ? .registerTargets(group: name, targets: targets) : .deregisterTargets(group: name, targets: targets))
        return ""
    }
}
