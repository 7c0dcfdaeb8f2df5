import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// Availability Zones at run time: each target's zone, each group's cross-zone setting in force and
/// the zones its load balancer has nodes in. Set again before every snapshot goes out, so a reload, an
/// API change or a registration is routed by them at once.
extension ControlPlane {
    package func assignZones() {
        for index in groups.indices where !groups[index].removed {
            let name = groups[index].configuration.name
            let balancer = configuration.listeners.first { $0.targetGroupName == name }
                .flatMap { configuration.loadBalancerIndex($0.loadBalancerName) }
                .map { configuration.loadBalancers[$0] }
            var lifecycle = groups[index].lifecycle
            switch groups[index].configuration.crossZone {
            case "true": lifecycle.crossZone = true
            case "false": lifecycle.crossZone = false
            default: lifecycle.crossZone = balancer?.attributes.crossZone ?? true
            }
            // Without Subnets there is one zone: everything is in it, whatever cross-zone says.
            if configuration.subnets.isEmpty { lifecycle.crossZone = true }
            lifecycle.enabledZones = balancer.map(configuration.zones(of:))
            lifecycle.shiftedZones = balancer.map { shiftedZones($0.name) } ?? []
            for target in lifecycle.targets.indices {
                let given = lifecycle.targets[target]
                let described = TargetConfiguration(
                    id: given.id, address: given.endpoint.ip, port: given.endpoint.port,
                    availabilityZone: given.availabilityZone)
                lifecycle.targets[target].zone = configuration.zone(of: described) ?? "all"
            }
            lifecycle.refreshRouting()
            groups[index].lifecycle = lifecycle
        }
    }

    /// Whether a registered target is in a zone its group's load balancer has no node in: `unused`,
    /// `Target.NotInUse`, as AWS reports it.
    package func isOutsideZones(_ group: Int, _ target: Target) -> Bool {
        !groups[group].lifecycle.inEnabledZone(target)
    }

    /// A target registered through an API needs a zone when `Subnets` are given: a subnet holding its
    /// address, or an `AvailabilityZone` (`all` for an address outside them), as AWS requires.
    package func zoneProblem(_ targets: [TargetConfiguration]) -> String? {
        guard !configuration.subnets.isEmpty else { return nil }
        let zones = Set(configuration.subnets.map(\.availabilityZone))
        for target in targets {
            if let zone = target.availabilityZone, zone != "all", !zones.contains(zone) {
                return
                    "\(target.id): AvailabilityZone \(zone) is the zone of no subnet (\(zones.sorted().joined(separator: ", ")), or all)"
            }
            if configuration.zone(of: target) == nil {
                return "\(target.id) is in none of the subnets' CIDR blocks: give AvailabilityZone all, as for an "
                    + "address outside the VPC"
            }
        }
        return nil
    }

    /// The lowest address of `subnet`'s CIDR block (past its network address) that no node has, for a
    /// load balancer made with `Subnets`.
    package func freeAddress(in subnet: SubnetConfiguration, taken: Set<IPAddress>) -> IPAddress? {
        guard let cidr = subnet.cidr, case .v4(let network) = cidr.address, cidr.prefixLength <= 30 else { return nil }
        let base = network.value & (cidr.prefixLength == 0 ? 0 : ~UInt32(0) << (32 - cidr.prefixLength))
        let size = UInt32(1) << (32 - cidr.prefixLength)
        for offset in 1..<min(size - 1, 4096) {
            let value = base + offset
            let address = IPAddress.v4(
                IPv4Address(
                    UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)))
            if !taken.contains(address) { return address }
        }
        return nil
    }
}
