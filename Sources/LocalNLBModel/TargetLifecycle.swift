import ProxyProtocol

/// What a change of target state asks the loop to do to flows.
package enum LifecycleEffect: Equatable, Sendable {
    case resetFlows(target: Int, reason: CloseReason)
}

/// The targets of one group and how their states move: registration, health-check results,
/// deregistration draining, unhealthy draining, fail-open (docs/health.md §3, §4). Plain Swift on a clock
/// it is given, so every transition can be tested without a socket or a wait.
package struct TargetLifecycle: Sendable {
    package var targets: [Target] = []
    package var configuration: TargetGroupConfiguration
    /// Multiplies every AWS timer (`--time-scale`).
    package let timeScale: Double
    /// The zones (of a zone bucket, see `bucket`) with fewer healthy targets than the group's minimum:
    /// there, every registered target takes flows.
    package private(set) var failingOpenZones: Set<String> = [""]
    /// Some zone is failing open.
    package var failingOpen: Bool { !failingOpenZones.isEmpty }
    /// Cross-zone load balancing as in force for this group (its attribute, or its load balancer's):
    /// off, fail-open is judged per zone and a node picks among its own zone's targets.
    package var crossZone = true
    /// The zones of the load balancer's nodes; a target elsewhere is not in use and takes no flows.
    /// nil: no load balancer forwards to the group.
    package var enabledZones: Set<String>?
    /// Zones a zonal shift moved traffic away from: with cross-zone on, their targets get no new flows.
    package var shiftedZones: Set<String> = []
    private var nextRegistration: UInt64 = 1

    package init(configuration: TargetGroupConfiguration, timeScale: Double) {
        self.configuration = configuration
        self.timeScale = timeScale
    }

    package var checksEnabled: Bool { configuration.healthCheck.enabled }

    /// AWS seconds as loop nanoseconds, scaled.
    package func nanoseconds(_ seconds: Int) -> UInt64 { UInt64(Double(seconds) * timeScale * 1e9) }

    var checkInterval: UInt64 { nanoseconds(configuration.healthCheck.intervalSeconds) }
    package var checkTimeout: UInt64 { nanoseconds(configuration.healthCheck.timeoutSeconds) }

    // MARK: Registration

    /// Registers a target (RegisterTargets). A draining target comes back in the state it had; a new one
    /// starts `initial` and is checked at once. Returns its index.
    @discardableResult
    package mutating func register(id: String, endpoint: IPEndpoint, zone: String? = nil, now: UInt64) -> Int {
        register([(id, endpoint, zone)], now: now)[0]
    }

    /// Registers many targets in one pass: O(targets + batch), one routing refresh at the end, so
    /// 8,000 targets in one RegisterTargets cost what 8,000 lookups do. Returns their indices.
    package mutating func register(_ batch: [(id: String, endpoint: IPEndpoint, zone: String?)], now: UInt64) -> [Int] {
        var live: [IPEndpoint: Int] = [:]
        // A slot whose target is gone and whose flows have all ended is used again, lowest first.
        var free: [Int] = []
        for index in targets.indices.reversed() {
            if targets[index].state != .unused {
                live[targets[index].endpoint] = index
            } else if targets[index].activeFlows == 0 {
                free.append(index)
            }
        }
        var indices: [Int] = []
        indices.reserveCapacity(batch.count)
        for item in batch {
            if let index = live[item.endpoint] {
                if targets[index].state == .draining {
                    (targets[index].state, targets[index].reason) = targets[index].stateBeforeDeregistration
                    if targets[index].state == .healthy { beginSlowStart(index, now: now) }
                }
                indices.append(index)
                continue
            }
            var target = Target(id: item.id, endpoint: item.endpoint, state: .initial)
            target.availabilityZone = item.zone
            target.registration = nextRegistration
            nextRegistration += 1
            if checksEnabled {
                target.reason = .registrationInProgress
                target.nextCheck = now
            } else {
                (target.state, target.reason) = (.unavailable, .healthCheckDisabled)
            }
            let index: Int
            if let slot = free.popLast() {
                targets[slot] = target
                index = slot
            } else {
                targets.append(target)
                index = targets.count - 1
            }
            live[item.endpoint] = index
            indices.append(index)
        }
        refreshRouting()
        return indices
    }

    /// Deregisters a target (DeregisterTargets): `draining` for the deregistration delay, no new flows.
    /// Returns false when no such target is registered.
    package mutating func deregister(endpoint: IPEndpoint, now: UInt64) -> Bool {
        deregister([endpoint], now: now).isEmpty
    }

    /// Deregisters many targets in one pass, all or none: the endpoints not registered, and nothing
    /// changed, or an empty list and every one draining.
    package mutating func deregister(_ endpoints: [IPEndpoint], now: UInt64) -> [IPEndpoint] {
        var live: [IPEndpoint: Int] = [:]
        for index in targets.indices where targets[index].state != .unused { live[targets[index].endpoint] = index }
        let missing = endpoints.filter { live[$0] == nil }
        guard missing.isEmpty else { return missing }
        for endpoint in endpoints {
            let index = live[endpoint]!
            guard targets[index].state != .draining else { continue }
            targets[index].stateBeforeDeregistration = (targets[index].state, targets[index].reason)
            targets[index].state = .draining
            targets[index].reason = .deregistrationInProgress
            (targets[index].slowStartSince, targets[index].slowStartUntil) = (0, 0)
            targets[index].drainingUntil = now + nanoseconds(configuration.deregistrationDelaySeconds)
            targets[index].checking = false
        }
        refreshRouting()
        return []
    }

    // MARK: Health checks

    /// Targets whose next check is due.
    package func dueChecks(now: UInt64) -> [Int] {
        guard checksEnabled else { return [] }
        return targets.indices.filter {
            let t = targets[$0]
            return (t.isRegistered || t.state == .unhealthyDraining) && !t.checking && t.nextCheck <= now
        }
    }

    /// A check starts: the next one is due an interval later. The first check after registration is at
    /// once; the second is offset by the target's place in the group, so checks spread over the interval.
    package mutating func checkStarted(_ index: Int, now: UInt64) {
        targets[index].checking = true
        var next = now + checkInterval
        if targets[index].state == .initial && targets[index].reason == .registrationInProgress {
            next += checkInterval * UInt64(index % max(targets.count, 1)) / UInt64(max(targets.count, 1))
        }
        targets[index].nextCheck = next
    }

    /// A check that could not be made (the load balancer was short of descriptors): no result, and the
    /// next try soon.
    package mutating func checkSkipped(_ index: Int, registration: UInt64, now: UInt64) {
        guard index < targets.count, targets[index].registration == registration else { return }
        targets[index].checking = false
        targets[index].nextCheck = now + min(checkInterval, 1_000_000_000)
    }

    /// A check's result. Returns what must happen to flows.
    package mutating func recordCheck(_ index: Int, registration: UInt64, passed: Bool, now: UInt64)
        -> [LifecycleEffect]
    {
        guard index < targets.count, targets[index].registration == registration else { return [] }
        targets[index].checking = false
        let state = targets[index].state
        guard targets[index].isRegistered || state == .unhealthyDraining else { return [] }
        let settings = configuration.healthCheck
        if passed {
            targets[index].consecutiveSuccesses += 1
            targets[index].consecutiveFailures = 0
            switch state {
            case .initial:
                // A new target is in service once it passes a check (docs/health.md §3).
                beginSlowStart(index, now: now)
                setState(index, .healthy, nil)
            case .unhealthy, .unhealthyDraining:
                if targets[index].consecutiveSuccesses >= settings.healthyThreshold {
                    beginSlowStart(index, now: now)
                    setState(index, .healthy, nil)
                }
            default:
                break
            }
            return []
        }
        targets[index].consecutiveFailures += 1
        targets[index].consecutiveSuccesses = 0
        let failedEnough = targets[index].consecutiveFailures >= settings.unhealthyThreshold
        switch state {
        case .initial:
            if failedEnough {
                setState(index, .unhealthy, .failedHealthChecks)
            } else {
                targets[index].reason = .initialHealthChecking
            }
            return []
        case .healthy where failedEnough:
            return turnUnhealthy(index, now: now)
        default:
            return []
        }
    }

    /// docs/alb.md §23: a target turning healthy enters slow start when the group has one (an HTTP
    /// group's `slow_start.duration_seconds` above 0) and another target is healthy and out of slow
    /// start already: the first targets of an empty group get their full share at once.
    private mutating func beginSlowStart(_ index: Int, now: UInt64) {
        let seconds = configuration.protocolName.isHTTP ? configuration.slowStartSeconds : 0
        guard seconds > 0 else { return }
        let warm = targets.indices.contains { other in
            other != index && targets[other].state == .healthy && targets[other].slowStartUntil <= now
        }
        guard warm else { return }
        targets[index].slowStartSince = now
        targets[index].slowStartUntil = now + max(nanoseconds(seconds), 1)
    }

    /// docs/health.md §4: with `target_health_state.unhealthy.connection_termination.enabled` the target's
    /// flows are reset, unless the group is failing open; without it the target drains first.
    private mutating func turnUnhealthy(_ index: Int, now: UInt64) -> [LifecycleEffect] {
        if configuration.unhealthyConnectionTermination {
            setState(index, .unhealthy, .failedHealthChecks)
            return isFailingOpen(index) ? [] : [.resetFlows(target: index, reason: .targetUnhealthy)]
        }
        let interval = nanoseconds(configuration.unhealthyDrainingIntervalSeconds)
        if interval == 0 {
            setState(index, .unhealthy, .failedHealthChecks)
        } else {
            setState(index, .unhealthyDraining, .failedHealthChecks)
            targets[index].drainingUntil = now + interval
        }
        return []
    }

    // MARK: Timers

    /// Ends the draining periods that are over. Returns what must happen to flows.
    package mutating func advance(now: UInt64) -> [LifecycleEffect] {
        var effects: [LifecycleEffect] = []
        for index in targets.indices where now >= targets[index].drainingUntil {
            switch targets[index].state {
            case .draining:
                if configuration.deregistrationConnectionTermination && targets[index].activeFlows > 0 {
                    effects.append(.resetFlows(target: index, reason: .targetDeregistered))
                }
                setState(index, .unused, .notRegistered)
            case .unhealthyDraining:
                setState(index, .unhealthy, .failedHealthChecks)
            default:
                break
            }
        }
        return effects
    }

    // MARK: Routing

    private mutating func setState(_ index: Int, _ state: TargetHealthState, _ reason: TargetHealthReason?) {
        targets[index].state = state
        targets[index].reason = reason
        // Unhealthy, draining or gone, a target leaves slow start; healthy again, it enters anew.
        if state != .healthy { (targets[index].slowStartSince, targets[index].slowStartUntil) = (0, 0) }
        refreshRouting()
    }

    /// The bucket fail-open is judged in: the target's zone with cross-zone off (a target in `all`
    /// counts in the group as a whole), the group with it on.
    func bucket(_ target: Target) -> String { crossZone || target.zone == "all" ? "" : target.zone }

    /// Whether the target is in a zone its load balancer has a node in (`all` is in every one).
    package func inEnabledZone(_ target: Target) -> Bool {
        guard let enabledZones else { return true }
        return target.zone == "all" || enabledZones.contains(target.zone)
    }

    /// In a zone shifted away from while every node picks from every zone.
    func isShiftedAway(_ target: Target) -> Bool { crossZone && shiftedZones.contains(target.zone) }

    /// Whether the target's zone (or group) is failing open.
    func isFailingOpen(_ index: Int) -> Bool { targets[index].inFailingOpenZone }

    /// Recomputes fail-open, per zone when cross-zone load balancing is off (docs/health.md §4), and which
    /// targets take new flows.
    package mutating func refreshRouting() {
        var registered: [String: Int] = [:]
        var healthy: [String: Int] = [:]
        for target in targets where inEnabledZone(target) && !isShiftedAway(target) {
            // A target in `all` counts in every zone; with cross-zone on there is one bucket.
            let buckets =
                crossZone ? [""] : target.zone == "all" ? [""] + (enabledZones.map(Array.init) ?? []) : [target.zone]
            for bucket in buckets {
                if target.isRegistered { registered[bucket, default: 0] += 1 }
                if target.state == .healthy { healthy[bucket, default: 0] += 1 }
            }
        }
        var failing = Set<String>()
        if checksEnabled {
            // An empty group fails open (nothing is healthy); with cross-zone off, each zone that has targets.
            for bucket in Set(registered.keys).union(crossZone ? [""] : []) {
                let (count, up) = (registered[bucket] ?? 0, healthy[bucket] ?? 0)
                var open = up < configuration.minimumHealthyTargetsCount
                if let percentage = configuration.minimumHealthyTargetsPercentage, up * 100 < percentage * count {
                    open = true
                }
                if open { failing.insert(bucket) }
            }
        }
        failingOpenZones = failing
        for index in targets.indices {
            let target = targets[index]
            targets[index].inFailingOpenZone = failing.contains(bucket(target))
            if !inEnabledZone(target) || isShiftedAway(target) {
                targets[index].takesNewFlows = false
            } else if !checksEnabled {
                targets[index].takesNewFlows = target.isRegistered
            } else if failing.contains(bucket(target)) {
                // docs/health.md §4: failing open, every registered target takes flows, unhealthy included
                // (but not one that is draining, for deregistration or after failing its checks).
                targets[index].takesNewFlows = target.isRegistered && target.state != .unhealthyDraining
            } else {
                targets[index].takesNewFlows = target.state == .healthy
            }
        }
    }

    /// Settings changed live (ModifyTargetGroupAttributes, a reload): new flows and new timers follow them.
    package mutating func update(_ configuration: TargetGroupConfiguration) {
        self.configuration = configuration
        refreshRouting()
    }
}
