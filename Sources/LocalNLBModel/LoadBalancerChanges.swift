import ProxyProtocol

/// The changes to a load balancer after it is made: its security groups, IP address type, subnets
/// (nodes come and go with them) and reserved capacity, under AWS's rules for network load balancers.
extension Configuration {
    /// How long something AWS takes `awsSeconds` for takes here: that, × `--time-scale`, and never more
    /// than half a second, so that a state like `provisioning` or `pending` is seen and never waited on.
    package static func emulatedDelay(awsSeconds: Double, timeScale: Double) -> UInt64 {
        UInt64(min(0.5, awsSeconds * timeScale) * 1e9)
    }

    mutating func setSecurityGroups(_ name: String, _ groups: [String], enforcePrivateLink: String?) throws(APIError) {
        guard let index = loadBalancerIndex(name) else { throw notFound(loadBalancer: name) }
        guard loadBalancers[index].madeWithSecurityGroups else {
            throw APIError(
                code: "InvalidConfigurationRequest",
                message: "Load balancer '\(names.loadBalancer(name))' was created without security groups: a Network "
                    + "Load Balancer can have them set only when it was created with at least one")
        }
        if let bad = groups.first(where: { !$0.hasPrefix("sg-") }) {
            throw APIError(code: "InvalidSecurityGroup", message: "Security group '\(bad)' does not exist")
        }
        if let duplicate = groups.first(where: { id in groups.filter { $0 == id }.count > 1 }) {
            throw .validation("Security group '\(duplicate)' is given twice")
        }
        if groups.count > 5 {
            throw .validation("SecurityGroups: \(groups.count) given, and a load balancer can have at most 5")
        }
        if let enforce = enforcePrivateLink {
            guard enforce == "on" || enforce == "off" else {
                throw .validation(
                    "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic '\(enforce)': must be on or off")
            }
            loadBalancers[index].enforceInboundRulesOnPrivateLink = enforce
        }
        loadBalancers[index].securityGroups = groups
    }

    mutating func setIpAddressType(_ name: String, _ type: String?) throws(APIError) {
        guard let index = loadBalancerIndex(name) else { throw notFound(loadBalancer: name) }
        guard let type else { throw .validation("IpAddressType is required (ipv4 or dualstack)") }
        switch type {
        case "ipv4": break
        case "dualstack":
            if let node = loadBalancers[index].nodes.first(where: { $0.ipv6 == nil }) {
                throw APIError(
                    code: "InvalidConfigurationRequest",
                    message: "dualstack needs an IPv6 address on every node, and the node in \(node.subnetID) has "
                        + "none: give its SubnetMapping an IPv6Address (SetSubnets, or the file)")
            }
        case "dualstack-without-public-ipv4":
            throw .validation("IpAddressType 'dualstack-without-public-ipv4' is for Application Load Balancers only")
        default:
            throw .validation("IpAddressType '\(type)' is not valid: ipv4 or dualstack")
        }
        loadBalancers[index].ipAddressType = type
    }

    /// The load balancer's nodes become one per subnet given: a subnet it has keeps its node (and
    /// address), a new one gets a node as CreateLoadBalancer would, a subnet left out loses its node
    /// (its listeners' sockets on that address close and their flows are reset).
    mutating func setSubnets(
        _ name: String, subnets given: [String], mappings given2: [[String: String]], ipAddressType: String?
    ) throws(APIError) -> [Effect] {
        guard let index = loadBalancerIndex(name) else { throw notFound(loadBalancer: name) }
        if !given.isEmpty && !given2.isEmpty {
            throw .validation("Subnets and SubnetMappings cannot be specified at the same time")
        }
        let mappings = given2.isEmpty ? given.map { ["SubnetId": $0] } : given2
        guard !mappings.isEmpty else {
            throw .validation("At least one subnet must be specified (Subnets or SubnetMappings)")
        }
        let ids = mappings.map { $0["SubnetId"] ?? "" }
        if let duplicate = ids.first(where: { id in ids.filter { $0 == id }.count > 1 }) {
            throw .validation("Subnet '\(duplicate)' is given twice")
        }
        let old = loadBalancers[index]
        var others = self
        others.loadBalancers.remove(at: index)
        let nodes = try others.nodeMappings(mappings, keeping: old.nodes)
        var reader = newReader()
        reader.allowsRegionSuffix = true  // the model's own name
        let read = reader.loadBalancer(
            .object(["Name": .string(name), "Type": .string("network"), "SubnetMappings": .array(nodes)]),
            "SetSubnets")
        loadBalancers[index].nodes = try Self.validated(reader, read).nodes
        if let ipAddressType { try setIpAddressType(name, ipAddressType) }
        let before = Set(old.nodes.map(\.subnetID))
        let after = Set(loadBalancers[index].nodes.map(\.subnetID))
        var effects: [Effect] = []
        for node in loadBalancers[index].nodes where !before.contains(node.subnetID) {
            effects.append(
                .log(
                    "load balancer \(name): node in \(node.subnetID) (\(zone(of: node))) on "
                        + node.addresses.map(\.description).joined(separator: ", ")))
        }
        for node in old.nodes where !after.contains(node.subnetID) {
            effects.append(.log("load balancer \(name): node in \(node.subnetID) (\(zone(of: node))) removed"))
        }
        return effects + [.resetFlowsOfClosedListeners]
    }

    /// AWS's rules: one of a capacity or a reset; nothing while a change is pending; at most 45,000
    /// units per zone; at most two decreases (a reset is one) a day.
    mutating func modifyCapacityReservation(
        _ name: String, units text: String?, reset: Bool, wallClock: Double, now: UInt64, timeScale: Double
    ) throws(APIError) -> String {
        guard let index = loadBalancerIndex(name) else { throw notFound(loadBalancer: name) }
        switch (text, reset) {
        case (nil, false):
            throw .validation("You must specify either MinimumLoadBalancerCapacity or ResetCapacityReservation")
        case (.some, true):
            throw .validation("MinimumLoadBalancerCapacity and ResetCapacityReservation cannot be specified together")
        default: break
        }
        let current = loadBalancers[index].capacityReservation
        if let current, now < current.readyAt {
            throw APIError(
                code: "CapacityReservationPending",
                message: "There is a pending capacity reservation: wait until it is provisioned")
        }
        var units = 0
        if let text {
            guard let value = Int(text), value > 0 else {
                throw .validation("MinimumLoadBalancerCapacity.CapacityUnits '\(text)': a whole number above 0")
            }
            let zones = max(1, zones(of: loadBalancers[index]).count)
            guard value <= 45_000 * zones else {
                throw APIError(
                    code: "CapacityUnitsLimitExceeded",
                    message: "\(value) capacity units is more than 45000 per Availability Zone (\(zones) zone(s))")
            }
            units = value
        }
        var decreases = (current?.decreases ?? []).filter { wallClock - $0 < 86_400 }
        if let current, units < current.capacityUnits {
            guard decreases.count < 2 else {
                throw APIError(
                    code: "CapacityDecreaseRequestLimitExceeded",
                    message: "The capacity reservation can be decreased at most 2 times a day")
            }
            decreases.append(wallClock)
        }
        if reset {
            loadBalancers[index].capacityReservation = nil
            if !decreases.isEmpty {
                // The day's decreases outlive the reservation they were made on.
                var none = CapacityReservation(capacityUnits: 0, readyAt: 0, lastModified: wallClock)
                none.decreases = decreases
                loadBalancers[index].capacityReservation = none
            }
            return "load balancer \(name): capacity reservation reset"
        }
        var reservation = CapacityReservation(
            capacityUnits: units, readyAt: now + Self.emulatedDelay(awsSeconds: 3600, timeScale: timeScale),
            lastModified: wallClock)
        reservation.decreases = decreases
        loadBalancers[index].capacityReservation = reservation
        return "load balancer \(name): capacity reservation of \(units) units pending"
    }
}
