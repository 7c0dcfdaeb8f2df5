import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// CreateLoadBalancer, DescribeLoadBalancers and DeleteLoadBalancer: the load balancers of the model,
/// each with its own nodes (addresses), listeners and attributes.
extension ControlPlane {
    func describeLoadBalancers(_ form: QueryForm) throws(APIError) -> String {
        var chosen = Array(configuration.loadBalancers.indices)
        let arns = form.list("LoadBalancerArns")
        let wanted = form.list("Names")
        if !arns.isEmpty && !wanted.isEmpty {
            throw .validation("Load balancer names and load balancer ARNs cannot be specified at the same time")
        }
        if !arns.isEmpty {
            let missing = arns.filter { arn in
                !configuration.loadBalancers.contains { names.loadBalancer($0.name) == arn }
            }
            guard missing.isEmpty else {
                throw APIError(
                    code: "LoadBalancerNotFound",
                    message: "Load balancers '[\(missing.joined(separator: ", "))]' not found")
            }
            chosen = chosen.filter { arns.contains(names.loadBalancer(configuration.loadBalancers[$0].name)) }
        } else if !wanted.isEmpty {
            let missing = wanted.filter { configuration.loadBalancerIndex($0) == nil }
            guard missing.isEmpty else {
                throw APIError(
                    code: "LoadBalancerNotFound",
                    message: "Load balancers '[\(missing.joined(separator: ", "))]' not found")
            }
            chosen = chosen.filter { wanted.contains(configuration.loadBalancers[$0].name) }
        }
        let (members, next) = try page(chosen.map(loadBalancerMember), form)
        return XML.list("LoadBalancers", members) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    /// A node is in its subnet's zone (`Subnets`); without Subnets, in the region's first.
    func availabilityZoneMembers(_ index: Int) -> [String] {
        configuration.loadBalancers[index].nodes.map { node in
            let addresses = node.addresses.map {
                $0.isIPv6
                    ? XML.text("IPv6Address", $0.description)
                    : XML.text("IpAddress", $0.description) + XML.text("PrivateIPv4Address", $0.description)
            }
            return XML.text("ZoneName", configuration.zone(of: node)) + XML.text("SubnetId", node.subnetID)
                + XML.list("LoadBalancerAddresses", addresses)
        }
    }

    /// `provisioning` for a moment after CreateLoadBalancer (AWS's minutes, scaled: at most half a
    /// second), `active_impaired` while the daemon drains, else `active`.
    func loadBalancerState(_ name: String) -> String {
        if draining { return "active_impaired" }
        return now < (loadBalancerActiveAt[name] ?? 0) ? "provisioning" : "active"
    }

    func loadBalancerMember(_ index: Int) -> String {
        let balancer = configuration.loadBalancers[index]
        let zones = availabilityZoneMembers(index)
        var fields = [
            XML.text("LoadBalancerArn", names.loadBalancer(balancer.name)),
            XML.text("DNSName", names.dnsName(balancer.name)),
        ]
        if let zone = names.canonicalHostedZoneID { fields.append(XML.text("CanonicalHostedZoneId", zone)) }
        fields += [
            XML.text("CreatedTime", loadBalancerCreatedTimes[balancer.name] ?? createdTime),
            XML.text("LoadBalancerName", balancer.name), XML.text("Scheme", balancer.scheme),
            XML.text("VpcId", names.vpcID),
            XML.element("State", [XML.text("Code", loadBalancerState(balancer.name))]),
            XML.text("Type", "network"), XML.list("AvailabilityZones", zones),
        ]
        if !balancer.securityGroups.isEmpty {
            fields.append(XML.list("SecurityGroups", balancer.securityGroups.map(XML.escape)))
            fields.append(
                XML.text(
                    "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic", balancer.enforceInboundRulesOnPrivateLink))
        }
        fields.append(XML.text("IpAddressType", balancer.ipAddressType))
        return fields.joined()
    }

    /// A network load balancer with a node per subnet (`Configuration.createLoadBalancer` gives the
    /// nodes their addresses).
    package func createLoadBalancer(_ form: QueryForm) throws(APIError) -> String {
        var request = LoadBalancerRequest()
        request.name = form["Name"]
        request.type = form["Type"]
        request.unsupported = ["CustomerOwnedIpv4Pool", "EnablePrefixForIpv6SourceNat", "IpamPools.Ipv4IpamPoolId"]
            .filter { form[$0] != nil }
        request.subnetMappings = form.structures(
            "SubnetMappings", fields: ["SubnetId", "PrivateIPv4Address", "IPv6Address", "AllocationId"])
        request.subnets = form.list("Subnets")
        request.scheme = form["Scheme"]
        request.ipAddressType = form["IpAddressType"]
        request.securityGroups = form.list("SecurityGroups")
        request.tags = form.structures("Tags", fields: ["Key", "Value"])
        try commit(.createLoadBalancer(request))
        return XML.list("LoadBalancers", [loadBalancerMember(configuration.loadBalancerIndex(request.name ?? "")!)])
    }

    /// Deletes the load balancer and its listeners (their flows are reset); its target groups stay,
    /// as on AWS. A load balancer that is not there is no error (AWS's call is idempotent).
    package func deleteLoadBalancer(_ form: QueryForm) throws(APIError) -> String {
        guard let arn = form["LoadBalancerArn"] else { throw .validation("LoadBalancerArn is required") }
        guard arn.hasPrefix("arn:"), let name = names.name(in: arn, kind: "loadbalancer/net") else {
            throw .validation("'\(arn)' is not a valid load balancer ARN")
        }
        try commit(.deleteLoadBalancer(name: name))
        return ""
    }
}
