import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol
import Synchronization

/// A target group as the control plane runs it: its settings and targets (held once, by the
/// lifecycle; setting the settings updates the lifecycle and the header templates) and what every
/// published `RoutingGroup` of it shares. The loops never see it, only its `routing`.
package struct TargetGroup: Sendable {
    package var configuration: TargetGroupConfiguration {
        @inline(__always) get { lifecycle.configuration }
        set {
            lifecycle.update(newValue)
            headerTemplates = RoutingGroup.headerTemplates(newValue.proxyProtocol)
            if !newValue.stickinessEnabled { stickyTargets.removeAll() }
        }
    }
    /// The group's PROXY v2 header for IPv4 and for IPv6 flows, encoded once (nil: not v2).
    package private(set) var headerTemplates: (v4: ProxyV2Template?, v6: ProxyV2Template?)
    package var lifecycle: TargetLifecycle
    package var selector: TargetSelector
    /// Removed from the configuration by a reload: no listener forwards to it any more.
    package var removed = false
    /// `stickiness.type` `source_ip`: the target each client IP last went to.
    package let stickyTargets = StickyTable()

    package var targets: [Target] {
        get { lifecycle.targets }
        set { lifecycle.targets = newValue }
    }

    package init(_ configuration: TargetGroupConfiguration, timeScale: Double, now: UInt64) {
        self.headerTemplates = RoutingGroup.headerTemplates(configuration.proxyProtocol)
        self.lifecycle = TargetLifecycle(configuration: configuration, timeScale: timeScale)
        self.selector = TargetSelector()
        _ = lifecycle.register(configuration.targets.map { ($0.id, $0.endpoint, $0.availabilityZone) }, now: now)
    }

    /// What the loops route this group's new flows by, as of now: the settings, the targets with
    /// the facts a pick reads, and the selector and sticky table every publish shares.
    package var routing: RoutingGroup {
        RoutingGroup(
            configuration: configuration, targets: targets.map(RoutedTarget.init), crossZone: lifecycle.crossZone,
            headerTemplates: headerTemplates, selector: selector, stickyTargets: stickyTargets)
    }
}
