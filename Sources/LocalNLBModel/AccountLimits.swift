/// AWS's default quotas (DescribeAccountLimits): every name AWS answers with, in its order, and the
/// default of each (the NLB guide's "Quotas" page; the ALB and GWLB ones as their guides give them).
/// The change function holds API writers to the network load balancer's (docs/api.md §13); a file may
/// go past them, with a warning from `check-config`, and raise them (`Admin.AccountLimits`), as a quota
/// increase does on AWS.
package enum AccountLimits {
    package static let all: [(name: String, max: Int)] = [
        ("application-load-balancers", 50),
        ("condition-values-per-alb-rule", 5),
        ("condition-wildcards-per-alb-rule", 5),
        ("gateway-load-balancers", 100),
        ("gateway-load-balancers-per-vpc", 100),
        ("geneve-target-groups", 100),
        ("listeners-per-application-load-balancer", 50),
        ("listeners-per-network-load-balancer", 50),
        ("network-load-balancers", 50),
        ("rules-per-application-load-balancer", 100),
        ("target-groups", 3000),
        ("target-groups-per-action-on-application-load-balancer", 5),
        ("target-groups-per-action-on-network-load-balancer", 5),
        ("target-groups-per-application-load-balancer", 100),
        ("targets-per-application-load-balancer", 1000),
        ("targets-per-availability-zone-per-gateway-load-balancer", 300),
        ("targets-per-availability-zone-per-network-load-balancer", 500),
        ("targets-per-network-load-balancer", 3000),
    ]

    /// A target group's targets: AWS's "targets per target group per Region" (a Service Quotas quota
    /// that DescribeAccountLimits does not list; `Admin.AccountLimits` raises it by this name too).
    package static let targetsPerTargetGroup = (name: "targets-per-target-group", max: 1000)
}

extension Configuration {
    /// The limit of that name: AWS's default, or what `Admin.AccountLimits` raised it to.
    package func accountLimit(_ name: String) -> Int {
        admin?.accountLimits[name]
            ?? AccountLimits.all.first { $0.name == name }?.max ?? AccountLimits.targetsPerTargetGroup.max
    }

    /// What counts toward each network load balancer quota, for the model as it stands.
    func quotaUsage() -> [(code: String, what: String, count: Int, max: Int)] {
        // Quotas are per region: each region's load balancers and target groups count apart.
        var usage: [(String, String, Int, Int)] = []
        let regions = Set((loadBalancers.map(\.name) + targetGroups.map(\.name)).map(names.region(of:))).sorted()
        for region in regions {
            let place = " in \(region)"
            usage.append(
                (
                    "TooManyLoadBalancers", "network load balancers\(place)",
                    loadBalancers.filter { names.region(of: $0.name) == region }.count,
                    accountLimit("network-load-balancers")
                ))
            usage.append(
                (
                    "TooManyTargetGroups", "target groups\(place)",
                    targetGroups.filter { names.region(of: $0.name) == region }.count, accountLimit("target-groups")
                ))
        }
        for balancer in loadBalancers {
            let listenersOf = listeners.filter { $0.loadBalancerName == balancer.name }
            usage.append(
                (
                    "TooManyListeners", "listeners on \(balancer.name)", listenersOf.count,
                    accountLimit("listeners-per-network-load-balancer")
                ))
            // A target in N groups counts N times; with cross-zone on, the per-zone quota is the whole one.
            let targets = Set(listenersOf.map(\.targetGroupName)).flatMap { name in
                targetGroups.first { $0.name == name }?.targets ?? []
            }
            usage.append(
                (
                    "TooManyTargets", "targets behind \(balancer.name)", targets.count,
                    accountLimit("targets-per-network-load-balancer")
                ))
            var perZone: [String: Int] = [:]
            for target in targets { perZone[zone(of: target) ?? "all", default: 0] += 1 }
            for (zone, count) in perZone.sorted(by: { $0.key < $1.key }) {
                usage.append(
                    (
                        "TooManyTargets", "targets in \(zone) behind \(balancer.name)", count,
                        accountLimit("targets-per-availability-zone-per-network-load-balancer")
                    ))
            }
        }
        for group in targetGroups {
            usage.append(
                (
                    "TooManyTargets", "targets in \(group.name)", group.targets.count,
                    accountLimit(AccountLimits.targetsPerTargetGroup.name)
                ))
        }
        return usage
    }

    /// The first quota this model is over that `old` was not (a change never fails for a quota it did
    /// not move), as AWS's error.
    func quotaExceeded(since old: Configuration) -> APIError? {
        let before = Dictionary(old.quotaUsage().map { ($0.what, $0.count) }, uniquingKeysWith: max)
        for usage in quotaUsage() where usage.count > usage.max && usage.count > (before[usage.what] ?? 0) {
            return APIError(
                code: usage.code,
                message: "You've reached the limit on the number of \(usage.what): \(usage.max) "
                    + "(DescribeAccountLimits)")
        }
        return nil
    }
}
