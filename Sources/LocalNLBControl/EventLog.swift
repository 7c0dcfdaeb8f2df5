import LocalNLBDataPlane
import LocalNLBModel

/// The operator's event log (`LoadBalancerOptions.log`, one timestamped line each): listeners opened
/// and closed, targets registered and every change of their state with its reason code, attribute
/// changes with the old and new value, and what a reload changed.
package struct LoggedTarget: Equatable {
    package var registration: UInt64
    package var state: TargetHealthState
    package var reason: TargetHealthReason?
}

extension ControlPlane {
    /// Logs each target whose registration, state or reason moved since the last call.
    func logTargetChanges() {
        while loggedTargets.count < groups.count { loggedTargets.append([]) }
        for groupIndex in groups.indices {
            let name = groups[groupIndex].configuration.name
            for (targetIndex, target) in groups[groupIndex].targets.enumerated() {
                let now = LoggedTarget(registration: target.registration, state: target.state, reason: target.reason)
                let before =
                    targetIndex < loggedTargets[groupIndex].count ? loggedTargets[groupIndex][targetIndex] : nil
                guard before != now else { continue }
                var reason = target.reason.map { " (\($0.rawValue))" } ?? ""
                if target.state == .unhealthy || target.state == .unhealthyDraining,
                    before?.state != target.state, let cause = target.lastCheckFailure
                {
                    reason += ": \(cause)"
                }
                if target.state == .healthy, before?.state != .healthy, target.slowStartUntil > 0 {
                    // docs/alb.md §23: what a user watching the log needs to read the request counts.
                    let seconds = groups[groupIndex].configuration.slowStartSeconds
                    reason += ", in slow start for \(seconds) s: its share of requests grows linearly to a full one"
                }
                if let before, before.registration == now.registration {
                    // The same state with a new reason shows the reason on both sides.
                    let from =
                        before.state == now.state
                        ? before.state.rawValue + (before.reason.map { " (\($0.rawValue))" } ?? "")
                        : before.state.rawValue
                    options.log(
                        "target group \(name): target \(target.endpoint) \(from) → \(target.state.rawValue)\(reason)")
                } else if target.state != .unused {
                    options.log(
                        "target group \(name): target \(target.endpoint) registered, \(target.state.rawValue)\(reason)"
                            + waitingNote(groupIndex, target))
                }
                if targetIndex < loggedTargets[groupIndex].count {
                    loggedTargets[groupIndex][targetIndex] = now
                } else {
                    loggedTargets[groupIndex].append(now)
                }
            }
        }
    }

    func logListener(_ listener: Listener, opened: Bool) {
        let group =
            groups.indices.contains(listener.groupIndex)
            ? groups[listener.groupIndex].configuration.name : "its default action (no target group)"
        options.log("listener \(listener.endpoint) \(opened ? "opened, forwarding to \(group)" : "closed")")
    }

    /// Logs each attribute whose value in force differs between `old` and `new`.
    func logAttributeChanges(
        _ old: TargetGroupConfiguration, _ new: TargetGroupConfiguration, by source: String
    ) {
        let before = Dictionary(old.effectiveAttributes.map { ($0.key, $0.value) }) { first, _ in first }
        for (key, value) in new.effectiveAttributes where before[key] != value {
            options.log("target group \(new.name): \(key) \(before[key] ?? "-") → \(value) (\(source))")
        }
    }

    /// What a target registered in `initial` waits for, under the group's timers as scaled: its first
    /// passing check puts it in service (docs/health.md §3), and it is checked at once, then each
    /// interval; failing, it turns unhealthy after UnhealthyThresholdCount checks, which AWS's defaults
    /// make a minute a new user should not take for a hang.
    func waitingNote(_ groupIndex: Int, _ target: Target) -> String {
        guard target.state == .initial else { return "" }
        let check = groups[groupIndex].configuration.healthCheck
        func shown(_ seconds: Double) -> String {
            seconds >= 10 ? String(Int(seconds.rounded())) : String(format: "%.1f", seconds)
        }
        let scale = options.timeScale == 1 ? "" : " × --time-scale \(options.timeScale)"
        let failing = Double(check.unhealthyThreshold * check.intervalSeconds) * options.timeScale
        return "; healthy at its first passing check (now, then every \(check.intervalSeconds) s\(scale)), "
            + "unhealthy after \(check.unhealthyThreshold) failing (about \(shown(failing)) s)"
    }
}
