import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// Availability Zones at run time: each target's zone, each group's cross-zone setting in force and
/// the zones its load balancer has nodes in. Set again before every snapshot goes out, so a reload, an
/// API change or a registration is routed by them at once.
extension ControlPlane {
    func assignZones() {
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
    func isOutsideZones(_ group: Int, _ target: Target) -> Bool {
        !groups[group].lifecycle.inEnabledZone(target)
    }
}
