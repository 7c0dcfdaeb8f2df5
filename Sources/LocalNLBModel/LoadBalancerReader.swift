import ProxyProtocol

/// The load balancers of a configuration (`LoadBalancer` / `LoadBalancers`) and the `Subnets` that put
/// their nodes and targets in zones.
extension ConfigReader {
    package mutating func loadBalancer(_ value: JSONValue, _ path: String) -> LoadBalancerConfiguration? {
        let keys = [
            "Name", "Type", "Scheme", "IpAddressType", "SubnetMappings", "Subnets", "SecurityGroups",
            "LoadBalancerAttributes", "Tags", "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic",
            "MinimumLoadBalancerCapacity",
        ]
        guard let object = readObject(value, path, keys: keys) else { return nil }
        var balancer = LoadBalancerConfiguration(name: "localnlb", nodes: [])
        if let value = object["Name"], let text = string(value, "\(path).Name") {
            if let problem = Self.loadBalancerNameProblem(regionSuffixChecked(text, "\(path).Name")) {
                error("\(path).Name", problem)
            }
            balancer.name = text
        }
        if let value = object["Type"], let text = string(value, "\(path).Type") {
            if let type = LoadBalancerType(rawValue: text) {
                balancer.type = type
            } else {
                error(
                    "\(path).Type",
                    "\"\(text)\" is not network or application (a gateway load balancer is not emulated)")
            }
        }
        if let value = object["Scheme"] {
            balancer.scheme =
                choice(value, "\(path).Scheme", Scheme.self, names: ["internet-facing", "internal"])?.rawValue
                ?? balancer.scheme
        }
        if let value = object["IpAddressType"] {
            balancer.ipAddressType =
                choice(value, "\(path).IpAddressType", IPAddressType.self, names: ["ipv4", "dualstack"])?.rawValue
                ?? balancer.ipAddressType
        }
        for key in ["Subnets", "SecurityGroups"] {
            if let value = object[key], let items = array(value, "\(path).\(key)") {
                let texts = items.enumerated().compactMap { index, item in
                    string(item, "\(path).\(key)[\(index)]")
                }
                if key == "SecurityGroups" {
                    balancer.securityGroups = texts
                    balancer.madeWithSecurityGroups = !texts.isEmpty
                }
            }
        }
        if let value = object["Tags"] { balancer.tags = tags(value, "\(path).Tags") }
        let enforce = "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"
        if let value = object[enforce] {
            balancer.enforceInboundRulesOnPrivateLink =
                choice(value, "\(path).\(enforce)", OnOff.self, names: ["on", "off"])?.rawValue ?? "on"
        }
        if let value = object["LoadBalancerAttributes"] {
            attributes(
                value, "\(path).LoadBalancerAttributes", index: LoadBalancerAttributes.index(balancer.type),
                into: &balancer.attributes,
                kind: balancer.type == .application ? "Application Load Balancer" : "Network Load Balancer")
        }
        guard let mappingsValue = object["SubnetMappings"] else {
            error("\(path).SubnetMappings", "missing: each mapping is a node with a PrivateIPv4Address")
            return nil
        }
        guard let mappings = array(mappingsValue, "\(path).SubnetMappings") else { return nil }
        if mappings.isEmpty { error("\(path).SubnetMappings", "empty: at least one node is needed") }
        for (index, item) in mappings.enumerated() {
            let at = "\(path).SubnetMappings[\(index)]"
            guard
                let mapping = readObject(
                    item, at, keys: ["SubnetId", "PrivateIPv4Address", "IPv6Address", "AllocationId"])
            else { continue }
            let subnet = mapping["SubnetId"].flatMap { string($0, at + ".SubnetId") } ?? "subnet-\(index)"
            if let value = mapping["AllocationId"] { _ = string(value, at + ".AllocationId") }
            var ipv4: IPAddress?
            var ipv6: IPAddress?
            if let value = mapping["PrivateIPv4Address"], let address = readAddress(value, at + ".PrivateIPv4Address") {
                if address.isIPv6 {
                    error(at + ".PrivateIPv4Address", "\(address) is IPv6; put it in IPv6Address")
                } else {
                    ipv4 = address
                }
            }
            if let value = mapping["IPv6Address"], let address = readAddress(value, at + ".IPv6Address") {
                if address.isIPv6 { ipv6 = address } else { error(at + ".IPv6Address", "\(address) is not IPv6") }
            }
            if ipv4 == nil && ipv6 == nil && !errors.contains(where: { $0.hasPrefix(at) }) {
                error(at, "needs a PrivateIPv4Address or an IPv6Address: the address this node listens on")
            }
            let node = LoadBalancerNode(subnetID: subnet, ipv4: ipv4, ipv6: ipv6)
            for address in node.addresses where balancer.nodes.contains(where: { $0.addresses.contains(address) }) {
                error(at, "\(address) is already another node's address")
            }
            balancer.nodes.append(node)
        }
        if let value = object["MinimumLoadBalancerCapacity"],
            let capacity = readObject(value, "\(path).MinimumLoadBalancerCapacity", keys: ["CapacityUnits"])
        {
            // Reserved before the daemon starts: provisioned at once. At most 45,000 units a zone (node).
            let at = "\(path).MinimumLoadBalancerCapacity.CapacityUnits"
            if let units = capacity["CapacityUnits"].flatMap({
                integer($0, at, valid: 1...45_000 * max(1, balancer.nodes.count))
            }) {
                balancer.capacityReservation = CapacityReservation(capacityUnits: units, readyAt: 0, lastModified: 0)
            } else if capacity["CapacityUnits"] == nil {
                error(at, "missing")
            }
        }
        return balancer
    }

    /// `Subnets`: `[{SubnetId, AvailabilityZone, CidrBlock, Ipv6CidrBlock}]`, as `AWS::EC2::Subnet`.
    package mutating func subnets(_ value: JSONValue) -> [SubnetConfiguration] {
        guard let items = array(value, "Subnets") else { return [] }
        var result: [SubnetConfiguration] = []
        for (index, item) in items.enumerated() {
            let path = "Subnets[\(index)]"
            let keys = ["SubnetId", "AvailabilityZone", "CidrBlock", "Ipv6CidrBlock", "VpcId", "Tags"]
            guard let object = readObject(item, path, keys: keys) else { continue }
            guard let id = object["SubnetId"].flatMap({ string($0, path + ".SubnetId") }) else {
                if object["SubnetId"] == nil { error(path + ".SubnetId", "missing") }
                continue
            }
            guard let zone = object["AvailabilityZone"].flatMap({ string($0, path + ".AvailabilityZone") }) else {
                if object["AvailabilityZone"] == nil { error(path + ".AvailabilityZone", "missing (us-east-1a, …)") }
                continue
            }
            if zone == "all" || zone.isEmpty {
                error(path + ".AvailabilityZone", "\"\(zone)\" is not a zone's name (us-east-1a, …)")
            }
            var subnet = SubnetConfiguration(subnetID: id, availabilityZone: zone, cidr: nil)
            for (key, v6) in [("CidrBlock", false), ("Ipv6CidrBlock", true)] {
                guard let value = object[key], let text = string(value, "\(path).\(key)") else { continue }
                guard let cidr = CIDR(text), cidr.address.isIPv6 == v6, text.contains("/") else {
                    error(
                        "\(path).\(key)",
                        "\"\(text)\" is not an \(v6 ? "IPv6" : "IPv4") CIDR (like \(v6 ? "fd00:1::/64" : "127.0.1.0/24"))"
                    )
                    continue
                }
                if v6 { subnet.ipv6Cidr = cidr } else { subnet.cidr = cidr }
            }
            if result.contains(where: { $0.subnetID == id }) { error(path + ".SubnetId", "\"\(id)\" is given twice") }
            for other in result {
                for (mine, theirs) in [(subnet.cidr, other.cidr), (subnet.ipv6Cidr, other.ipv6Cidr)] {
                    if let mine, let theirs, mine.contains(theirs.address) || theirs.contains(mine.address) {
                        error(path, "\(mine) overlaps \(other.subnetID)'s \(theirs)")
                    }
                }
            }
            result.append(subnet)
        }
        return result
    }

    /// With `Subnets`: every node's subnet is one of them and holds its addresses, and every target is
    /// in a zone (its `AvailabilityZone`, or a subnet holding its address).
    mutating func checkZones(_ configuration: Configuration) {
        guard !configuration.subnets.isEmpty else { return }
        let ids = configuration.subnets.map(\.subnetID)
        for (lbIndex, balancer) in configuration.loadBalancers.enumerated() {
            for (index, node) in balancer.nodes.enumerated() {
                let path = "LoadBalancers[\(lbIndex)].SubnetMappings[\(index)]"
                guard let subnet = configuration.subnets.first(where: { $0.subnetID == node.subnetID }) else {
                    error(path + ".SubnetId", "\"\(node.subnetID)\" is not in Subnets (\(ids.joined(separator: ", ")))")
                    continue
                }
                // A subnet without a CIDR block of the family (a template's) places nodes by zone only.
                for address in node.addresses
                where (address.isIPv6 ? subnet.ipv6Cidr : subnet.cidr) != nil && !subnet.contains(address) {
                    error(path, "\(address) is not in \(subnet.subnetID)'s CIDR block")
                }
            }
        }
        for (groupIndex, group) in configuration.targetGroups.enumerated() {
            let zones = Set(configuration.subnets.map(\.availabilityZone))
            for (index, target) in group.targets.enumerated() {
                if let zone = target.availabilityZone, zone != "all", !zones.contains(zone) {
                    error(
                        "TargetGroups[\(groupIndex)].Targets[\(index)].AvailabilityZone",
                        "\"\(zone)\" is the zone of no subnet (\(zones.sorted().joined(separator: ", ")), or all)")
                }
            }
            for (index, target) in group.targets.enumerated() where configuration.zone(of: target) == nil {
                error(
                    "TargetGroups[\(groupIndex)].Targets[\(index)]",
                    "\(target.address) is in none of the Subnets' CIDR blocks: give it AvailabilityZone (one of "
                        + "\(zones.sorted().joined(separator: ", "))), or all as AWS requires for an address "
                        + "outside the VPC")
            }
        }
    }

    /// AWS's rule for a load balancer's name, or nil when `name` keeps it.
    static func loadBalancerNameProblem(_ name: String) -> String? {
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        guard (1...32).contains(name.count), allowed, !name.hasPrefix("-"), !name.hasSuffix("-"),
            !name.hasPrefix("internal-")
        else {
            return "\"\(name)\": a load balancer's name has 1-32 letters, digits and hyphens, "
                + "does not begin or end with a hyphen, and does not begin with internal-"
        }
        return nil
    }
}
