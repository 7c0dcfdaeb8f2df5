import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// CreateLoadBalancer, DescribeLoadBalancers and DeleteLoadBalancer: the load balancers of the model,
/// each with its own nodes (addresses), listeners and attributes.
extension ControlPlane {
    package func describeLoadBalancers(_ form: QueryForm) throws(QueryError) -> String {
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
                throw QueryError(
                    code: "LoadBalancerNotFound",
                    message: "Load balancers '[\(missing.joined(separator: ", "))]' not found")
            }
            chosen = chosen.filter { arns.contains(names.loadBalancer(configuration.loadBalancers[$0].name)) }
        } else if !wanted.isEmpty {
            let missing = wanted.filter { configuration.loadBalancerIndex($0) == nil }
            guard missing.isEmpty else {
                throw QueryError(
                    code: "LoadBalancerNotFound",
                    message: "Load balancers '[\(missing.joined(separator: ", "))]' not found")
            }
            chosen = chosen.filter { wanted.contains(configuration.loadBalancers[$0].name) }
        }
        let (members, next) = try page(chosen.map(loadBalancerMember), form)
        return XML.list("LoadBalancers", members) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    package func loadBalancerMember(_ index: Int) -> String {
        let balancer = configuration.loadBalancers[index]
        // A node is in its subnet's zone (`Subnets`); without Subnets, in the region's first.
        let zones = balancer.nodes.map { node in
            let addresses = node.addresses.map {
                $0.isIPv6
                    ? XML.text("IPv6Address", $0.description)
                    : XML.text("IpAddress", $0.description) + XML.text("PrivateIPv4Address", $0.description)
            }
            return XML.text("ZoneName", configuration.zone(of: node)) + XML.text("SubnetId", node.subnetID)
                + XML.list("LoadBalancerAddresses", addresses)
        }
        var fields = [
            XML.text("LoadBalancerArn", names.loadBalancer(balancer.name)),
            XML.text("DNSName", names.dnsName(balancer.name)),
        ]
        if let zone = names.canonicalHostedZoneID { fields.append(XML.text("CanonicalHostedZoneId", zone)) }
        fields += [
            XML.text("CreatedTime", loadBalancerCreatedTimes[balancer.name] ?? createdTime),
            XML.text("LoadBalancerName", balancer.name), XML.text("Scheme", balancer.scheme),
            XML.text("VpcId", names.vpcID),
            XML.element("State", [XML.text("Code", draining ? "active_impaired" : "active")]),
            XML.text("Type", "network"), XML.list("AvailabilityZones", zones),
            XML.text("IpAddressType", balancer.ipAddressType),
        ]
        return fields.joined()
    }

    /// A network load balancer with a node per subnet. A node's address is the SubnetMapping's
    /// `PrivateIPv4Address`, else the lowest 127.0.0.x no other node has: each load balancer listens
    /// on addresses of its own, as on AWS, and the first one made on an empty host gets 127.0.0.1.
    package func createLoadBalancer(_ form: QueryForm) throws(QueryError) -> String {
        guard let name = form["Name"] else { throw .validation("Name is required") }
        switch form["Type"] {
        case "network": break
        case nil:
            throw .validation(
                "Type is required here: AWS's default is application, and localnlb makes network load "
                    + "balancers only (Type=network, --type network)")
        case let type?:
            throw .validation("Type '\(type)': localnlb makes network load balancers only (Type=network)")
        }
        if let problem = ConfigReader.loadBalancerNameProblem(name) { throw .validation("Name \(problem)") }
        for key in ["CustomerOwnedIpv4Pool", "EnablePrefixForIpv6SourceNat", "IpamPools.Ipv4IpamPoolId"]
        where form[key] != nil {
            throw .validation("\(key) is not a parameter localnlb emulates for network load balancers")
        }
        var mappings = form.structures(
            "SubnetMappings", fields: ["SubnetId", "PrivateIPv4Address", "IPv6Address", "AllocationId"])
        let subnets = form.list("Subnets")
        if !subnets.isEmpty && !mappings.isEmpty {
            throw .validation("Subnets and SubnetMappings cannot be specified at the same time")
        }
        if mappings.isEmpty { mappings = subnets.map { ["SubnetId": $0] } }
        guard !mappings.isEmpty else {
            throw .validation("At least one subnet must be specified (Subnets or SubnetMappings)")
        }
        let subnetIDs = mappings.map { $0["SubnetId"] ?? "" }
        if let duplicate = subnetIDs.first(where: { id in subnetIDs.filter { $0 == id }.count > 1 }) {
            throw .validation("Subnet '\(duplicate)' is given twice")
        }
        if let existing = configuration.loadBalancerIndex(name) {
            // AWS's CreateLoadBalancer is idempotent: the same name and subnets return the load balancer.
            guard configuration.loadBalancers[existing].nodes.map(\.subnetID) == subnetIDs else {
                throw QueryError(
                    code: "DuplicateLoadBalancerName", message: "A load balancer with the same name '\(name)' exists")
            }
            return XML.list("LoadBalancers", [loadBalancerMember(existing)])
        }
        var taken = Set(configuration.loadBalancers.flatMap(\.nodes).flatMap(\.addresses))
        for mapping in mappings {
            if let text = mapping["PrivateIPv4Address"], let address = IPAddress(text) { taken.insert(address) }
        }
        var nodes: [JSONValue] = []
        var next: UInt8 = 1
        for mapping in mappings {
            var node = mapping.mapValues { JSONValue.string($0) }
            if !configuration.subnets.isEmpty {
                // With Subnets, a node is in one of them, on an address of its CIDR block.
                let id = mapping["SubnetId"] ?? ""
                guard let subnet = configuration.subnets.first(where: { $0.subnetID == id }) else {
                    throw QueryError(
                        code: "SubnetNotFound",
                        message: "The specified subnet does not exist: '\(id)' is not in Subnets ("
                            + configuration.subnets.map(\.subnetID).joined(separator: ", ") + ")")
                }
                if let text = mapping["PrivateIPv4Address"], let address = IPAddress(text), !subnet.contains(address) {
                    throw .validation("\(text) is not in \(id)'s CIDR block")
                }
                if mapping["PrivateIPv4Address"] == nil && mapping["IPv6Address"] == nil {
                    guard let address = freeAddress(in: subnet, taken: taken) else {
                        throw QueryError(
                            code: "InvalidSubnet",
                            message: "\(id) has no IPv4 CIDR block with an address left for a node")
                    }
                    node["PrivateIPv4Address"] = .string(address.description)
                    taken.insert(address)
                }
                nodes.append(.object(node))
                continue
            }
            if mapping["PrivateIPv4Address"] == nil && mapping["IPv6Address"] == nil {
                while next < 255 && taken.contains(.v4(IPv4Address(127, 0, 0, next))) { next += 1 }
                guard next < 255 else {
                    throw QueryError(
                        code: "TooManyLoadBalancers",
                        message: "every address 127.0.0.1-127.0.0.254 is a node's already; give SubnetMappings "
                            + "with a PrivateIPv4Address")
                }
                node["PrivateIPv4Address"] = .string("127.0.0.\(next)")
                taken.insert(.v4(IPv4Address(127, 0, 0, next)))
            }
            nodes.append(.object(node))
        }
        var object: [String: JSONValue] = ["Name": .string(name), "Type": .string("network")]
        object["SubnetMappings"] = .array(nodes)
        for key in ["Scheme", "IpAddressType"] {
            if let value = form[key] { object[key] = .string(value) }
        }
        let securityGroups = form.list("SecurityGroups")
        if !securityGroups.isEmpty { object["SecurityGroups"] = .array(securityGroups.map { .string($0) }) }
        let tags = form.structures("Tags", fields: ["Key", "Value"])
        if !tags.isEmpty { object["Tags"] = .array(tags.map { .object($0.mapValues { .string($0) }) }) }
        var reader = ConfigReader()
        // Read before `validated` copies the reader, so it sees every problem the reading recorded.
        let read = reader.loadBalancer(.object(object), "CreateLoadBalancer")
        let created = try validated(reader, read)
        try edit(by: "CreateLoadBalancer") { model in model.loadBalancers.append(created) }
        loadBalancerCreatedTimes[name] = rfc3339Now()
        let index = configuration.loadBalancerIndex(name)!
        options.log(
            "load balancer \(name) created on \(created.nodes.flatMap(\.addresses).map(\.description).joined(separator: ", "))"
        )
        return XML.list("LoadBalancers", [loadBalancerMember(index)])
    }

    /// Deletes the load balancer and its listeners (their flows are reset); its target groups stay,
    /// as on AWS. A load balancer that is not there is no error (AWS's call is idempotent).
    package func deleteLoadBalancer(_ form: QueryForm) throws(QueryError) -> String {
        guard let arn = form["LoadBalancerArn"] else { throw .validation("LoadBalancerArn is required") }
        guard arn.hasPrefix("arn:"), names.name(in: arn, kind: "loadbalancer/net") != nil else {
            throw .validation("'\(arn)' is not a valid load balancer ARN")
        }
        guard let index = try? loadBalancer(arn) else { return "" }
        let balancer = configuration.loadBalancers[index]
        if balancer.attributes.deletionProtection {
            throw QueryError(
                code: "OperationNotPermitted",
                message: "Load balancer '\(arn)' cannot be deleted because deletion protection is enabled")
        }
        try removeListeners(by: "DeleteLoadBalancer") { $0.loadBalancerName == balancer.name }
        try edit(by: "DeleteLoadBalancer") { model in model.loadBalancers.removeAll { $0.name == balancer.name } }
        loadBalancerCreatedTimes[balancer.name] = nil
        options.log("load balancer \(balancer.name) deleted")
        return ""
    }
}
