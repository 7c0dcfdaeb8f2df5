import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// CreateLoadBalancer, DescribeLoadBalancers and DeleteLoadBalancer: the load balancers of the model,
/// each with its own nodes (addresses), listeners and attributes.
extension ControlPlane {
    func describeLoadBalancers(_ form: QueryForm) throws(APIError) -> String {
        var chosen = configuration.loadBalancers.indices.filter {
            inRequestRegion(configuration.loadBalancers[$0].name)
        }
        let arns = form.list("LoadBalancerArns")
        let wanted = form.list("Names")
        if !arns.isEmpty && !wanted.isEmpty {
            throw .validation("Load balancer names and load balancer ARNs cannot be specified at the same time")
        }
        if !arns.isEmpty {
            let missing = arns.filter { arn in
                !chosen.contains { names.loadBalancer(configuration.loadBalancers[$0].name) == arn }
            }
            guard missing.isEmpty else {
                throw APIError(
                    code: "LoadBalancerNotFound",
                    message: "Load balancers '[\(missing.joined(separator: ", "))]' not found")
            }
            chosen = chosen.filter { arns.contains(names.loadBalancer(configuration.loadBalancers[$0].name)) }
        } else if !wanted.isEmpty {
            let qualified = wanted.map { names.qualified($0, region: requestRegionQualifier) }
            let missing = wanted.filter {
                configuration.loadBalancerIndex(names.qualified($0, region: requestRegionQualifier)) == nil
            }
            guard missing.isEmpty else {
                throw APIError(
                    code: "LoadBalancerNotFound",
                    message: "Load balancers '[\(missing.joined(separator: ", "))]' not found")
            }
            chosen = chosen.filter { qualified.contains(configuration.loadBalancers[$0].name) }
        }
        let (members, next) = try page(chosen.map(loadBalancerMember), form)
        return XML.list("LoadBalancers", members) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    /// A node is in its subnet's zone (`Subnets`); without Subnets, in the region's first.
    func availabilityZoneMembers(_ index: Int) -> [String] {
        let balancer = configuration.loadBalancers[index]
        return balancer.nodes.map { node in
            let addresses = node.addresses.map {
                $0.isIPv6
                    ? XML.text("IPv6Address", $0.description)
                    : XML.text("IpAddress", $0.description) + XML.text("PrivateIPv4Address", $0.description)
            }
            return XML.text("ZoneName", shownZone(configuration.zone(of: node), of: balancer.name))
                + XML.text("SubnetId", node.subnetID)
                + XML.list("LoadBalancerAddresses", addresses)
        }
    }

    /// A zone's name as the load balancer's region has it: the model names every region's zones after
    /// the home region's (`us-east-1a`), which a load balancer of `eu-west-1` shows as `eu-west-1a`.
    func shownZone(_ zone: String, of name: String) -> String {
        let region = names.region(of: name)
        guard region != names.region, zone.hasPrefix(names.region) else { return zone }
        return region + zone.dropFirst(names.region.count)
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
        if let zone = ResourceNames.canonicalHostedZoneID(
            names.region(of: balancer.name), application: balancer.type == .application)
        {
            fields.append(XML.text("CanonicalHostedZoneId", zone))
        }
        fields += [
            XML.text("CreatedTime", loadBalancerCreatedTimes[balancer.name] ?? createdTime),
            XML.text("LoadBalancerName", ResourceNames.shown(balancer.name)), XML.text("Scheme", balancer.scheme),
            XML.text("VpcId", names.vpcID),
            XML.element("State", [XML.text("Code", loadBalancerState(balancer.name))]),
            XML.text("Type", balancer.type.rawValue), XML.list("AvailabilityZones", zones),
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
        request.region = requestRegionQualifier
        try commit(.createLoadBalancer(request))
        let made = configuration.loadBalancerIndex(names.qualified(request.name ?? "", region: requestRegionQualifier))
        return XML.list("LoadBalancers", [loadBalancerMember(made!)])
    }

    /// Deletes the load balancer and its listeners (their flows are reset); its target groups stay,
    /// as on AWS. A load balancer that is not there is no error (AWS's call is idempotent).
    package func deleteLoadBalancer(_ form: QueryForm) throws(APIError) -> String {
        guard let arn = form["LoadBalancerArn"] else { throw .validation("LoadBalancerArn is required") }
        guard arn.hasPrefix("arn:"), let name = names.name(in: arn, kind: "loadbalancer/net") else {
            throw .validation("'\(arn)' is not a valid load balancer ARN")
        }
        guard inRequestRegion(name) else { return "" }  // not there, in this region: AWS's delete is idempotent
        try commit(.deleteLoadBalancer(name: name))
        return ""
    }
}
