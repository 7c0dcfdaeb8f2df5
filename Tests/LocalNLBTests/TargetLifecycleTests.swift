import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The health state machine on a fake clock: every transition, threshold, fail-open and termination rule.
@Suite struct TargetLifecycleTests {
    static let second: UInt64 = 1_000_000_000
    let a = IPEndpoint("127.0.0.1:9001")!
    let b = IPEndpoint("127.0.0.1:9002")!

    func lifecycle(_ change: (inout TargetGroupConfiguration) -> Void = { _ in }) -> TargetLifecycle {
        var configuration = TargetGroupConfiguration(name: "tg", port: 80, targetType: .ip, targets: [])
        change(&configuration)
        return TargetLifecycle(configuration: configuration, timeScale: 1)
    }

    /// Two healthy targets, so one turning unhealthy does not make the group fail open.
    func twoHealthy(_ change: (inout TargetGroupConfiguration) -> Void = { _ in }) -> TargetLifecycle {
        var l = lifecycle(change)
        for endpoint in [a, b] {
            let index = l.register(id: "\(endpoint.ip)", endpoint: endpoint, now: 0)
            _ = l.recordCheck(index, registration: l.targets[index].registration, passed: true, now: 0)
        }
        return l
    }

    func fail(_ l: inout TargetLifecycle, _ index: Int, times: Int, at now: UInt64 = 0) -> [LifecycleEffect] {
        var effects: [LifecycleEffect] = []
        for _ in 0..<times {
            effects += l.recordCheck(index, registration: l.targets[index].registration, passed: false, now: now)
        }
        return effects
    }

    func pass(_ l: inout TargetLifecycle, _ index: Int, times: Int) {
        for _ in 0..<times {
            _ = l.recordCheck(index, registration: l.targets[index].registration, passed: true, now: 0)
        }
    }

    @Test func aNewTargetIsInitialAndCheckedAtOnce() {
        var l = lifecycle()
        let index = l.register(id: "127.0.0.1", endpoint: a, now: 7)
        #expect(l.targets[index].state == .initial)
        #expect(l.targets[index].reason == .registrationInProgress)
        #expect(l.dueChecks(now: 7) == [index])
        l.checkStarted(index, now: 7)
        #expect(l.dueChecks(now: 7).isEmpty)
    }

    @Test func initialBecomesHealthyAtTheFirstPassingCheck() {
        var l = lifecycle()
        let index = l.register(id: "x", endpoint: a, now: 0)
        _ = fail(&l, index, times: 1)
        #expect(l.targets[index].state == .initial)
        #expect(l.targets[index].reason == .initialHealthChecking)
        pass(&l, index, times: 1)
        #expect(l.targets[index].state == .healthy)
        #expect(l.targets[index].reason == nil)
    }

    @Test func initialBecomesUnhealthyAfterTheUnhealthyThreshold() {
        var l = lifecycle { $0.healthCheck.unhealthyThreshold = 3 }
        let index = l.register(id: "x", endpoint: a, now: 0)
        _ = fail(&l, index, times: 2)
        #expect(l.targets[index].state == .initial)
        _ = fail(&l, index, times: 1)
        #expect(l.targets[index].state == .unhealthy)
        #expect(l.targets[index].reason == .failedHealthChecks)
    }

    @Test func healthyTurnsUnhealthyAfterThresholdAndItsFlowsAreReset() {
        var l = twoHealthy { $0.healthCheck.unhealthyThreshold = 2 }
        #expect(fail(&l, 0, times: 1).isEmpty)
        #expect(l.targets[0].state == .healthy)
        #expect(fail(&l, 0, times: 1) == [.resetFlows(target: 0, reason: .targetUnhealthy)])
        #expect(l.targets[0].state == .unhealthy)
        #expect(!l.targets[0].takesNewFlows)
        #expect(l.targets[1].takesNewFlows)
    }

    @Test func unhealthyTurnsHealthyAfterTheHealthyThreshold() {
        var l = twoHealthy { $0.healthCheck.healthyThreshold = 3 }
        _ = fail(&l, 0, times: 2)
        pass(&l, 0, times: 2)
        #expect(l.targets[0].state == .unhealthy)
        pass(&l, 0, times: 1)
        #expect(l.targets[0].state == .healthy)
        #expect(l.targets[0].takesNewFlows)
    }

    @Test func failingOpenKeepsFlowsAndRoutesToEveryRegisteredTarget() {
        var l = lifecycle()
        let index = l.register(id: "x", endpoint: a, now: 0)
        // No healthy target yet: fail open, the initial target takes flows (docs/health.md §4).
        #expect(l.failingOpen)
        #expect(l.targets[index].takesNewFlows)
        pass(&l, index, times: 1)
        #expect(!l.failingOpen)
        // The only target fails: the group fails open, so its flows are not reset.
        #expect(fail(&l, index, times: 2).isEmpty)
        #expect(l.targets[index].state == .unhealthy)
        #expect(l.failingOpen)
        #expect(l.targets[index].takesNewFlows)
    }

    @Test func minimumHealthyPercentage() {
        var l = twoHealthy { $0.minimumHealthyTargetsPercentage = 60 }
        #expect(!l.failingOpen)
        _ = fail(&l, 0, times: 2)  // 1 of 2 healthy is 50 %: below 60 %
        #expect(l.failingOpen)
        #expect(l.targets.allSatisfy { $0.takesNewFlows })
    }

    @Test func minimumHealthyCount() {
        var l = twoHealthy { $0.minimumHealthyTargetsCount = 2 }
        #expect(!l.failingOpen)
        #expect(fail(&l, 0, times: 2).isEmpty)  // failing open: no reset
        #expect(l.failingOpen)
    }

    @Test func withoutConnectionTerminationAnUnhealthyTargetDrainsFirst() {
        var l = twoHealthy {
            $0.unhealthyConnectionTermination = false
            $0.unhealthyDrainingIntervalSeconds = 60
        }
        #expect(fail(&l, 0, times: 2, at: 10 * Self.second).isEmpty)
        #expect(l.targets[0].state == .unhealthyDraining)
        #expect(!l.targets[0].takesNewFlows)
        #expect(l.advance(now: 69 * Self.second).isEmpty)
        #expect(l.targets[0].state == .unhealthyDraining)
        #expect(l.advance(now: 70 * Self.second).isEmpty)
        #expect(l.targets[0].state == .unhealthy)
    }

    @Test func deregistrationDrainsThenForgetsTheTarget() {
        var l = twoHealthy { $0.deregistrationDelaySeconds = 300 }
        let deregistered = l.deregister(endpoint: a, now: 0)
        #expect(deregistered)
        #expect(l.targets[0].state == .draining)
        #expect(l.targets[0].reason == .deregistrationInProgress)
        #expect(!l.targets[0].takesNewFlows)
        l.targets[0].activeFlows = 1
        #expect(l.advance(now: 299 * Self.second).isEmpty)
        // Without deregistration_delay.connection_termination.enabled the open flow carries on.
        #expect(l.advance(now: 300 * Self.second).isEmpty)
        #expect(l.targets[0].state == .unused)
        #expect(l.targets[0].reason == .notRegistered)
        let again = l.deregister(endpoint: a, now: 0)
        #expect(!again)
    }

    @Test func deregistrationWithTerminationResetsTheRemainingFlows() {
        var l = twoHealthy {
            $0.deregistrationDelaySeconds = 30
            $0.deregistrationConnectionTermination = true
        }
        _ = l.deregister(endpoint: a, now: 0)
        l.targets[0].activeFlows = 2
        #expect(l.advance(now: 30 * Self.second) == [.resetFlows(target: 0, reason: .targetDeregistered)])
    }

    @Test func registeringADrainingTargetBringsItBack() {
        var l = twoHealthy()
        _ = l.deregister(endpoint: a, now: 0)
        let index = l.register(id: "x", endpoint: a, now: 1)
        #expect(index == 0)
        #expect(l.targets[0].state == .healthy)
        #expect(l.targets[0].takesNewFlows)
    }

    @Test func aResultForAnEarlierRegistrationIsIgnored() {
        var l = twoHealthy()
        let old = l.targets[0].registration
        _ = l.deregister(endpoint: a, now: 0)
        _ = l.advance(now: 301 * Self.second)
        let index = l.register(id: "x", endpoint: a, now: 0)
        #expect(index == 0)  // the slot is used again
        _ = l.recordCheck(index, registration: old, passed: true, now: 0)
        #expect(l.targets[0].state == .initial)
    }

    @Test func disabledChecksMeanEveryRegisteredTargetTakesFlows() {
        var l = lifecycle { $0.healthCheck.enabled = false }
        let index = l.register(id: "x", endpoint: a, now: 0)
        #expect(l.targets[index].state == .unavailable)
        #expect(l.targets[index].reason == .healthCheckDisabled)
        #expect(l.targets[index].takesNewFlows)
        #expect(l.dueChecks(now: 1_000 * Self.second).isEmpty)
    }

    @Test func checksAfterTheFirstAreSpreadOverTheInterval() {
        var l = lifecycle { $0.healthCheck.intervalSeconds = 30 }
        let first = l.register(id: "a", endpoint: a, now: 0)
        let second = l.register(id: "b", endpoint: b, now: 0)
        l.checkStarted(first, now: 0)
        l.checkStarted(second, now: 0)
        #expect(l.targets[first].nextCheck == 30 * Self.second)
        #expect(l.targets[second].nextCheck == 45 * Self.second)
    }

    @Test func timeScaleShortensEveryTimer() {
        var configuration = TargetGroupConfiguration(name: "tg", port: 80, targetType: .ip, targets: [])
        configuration.deregistrationDelaySeconds = 300
        var l = TargetLifecycle(configuration: configuration, timeScale: 0.01)
        #expect(l.checkInterval == 300_000_000)
        _ = l.register(id: "a", endpoint: a, now: 0)
        _ = l.deregister(endpoint: a, now: 0)
        #expect(l.targets[0].drainingUntil == 3 * Self.second)
    }
}

@Suite struct Stickiness {
    let a = IPEndpoint("127.0.0.1:9001")!
    let b = IPEndpoint("127.0.0.1:9002")!

    func group(sticky: Bool) -> TargetGroup {
        var configuration = TargetGroupConfiguration(
            name: "tg", port: 80, targetType: .ip,
            targets: [
                TargetConfiguration(id: "a", address: a.ip, port: a.port),
                TargetConfiguration(id: "b", address: b.ip, port: b.port),
            ])
        configuration.healthCheck.enabled = false
        configuration.stickinessEnabled = sticky
        return TargetGroup(configuration, timeScale: 1, now: 0)
    }

    func key(_ client: String) -> FlowKey { FlowKey(client: IPEndpoint(client)!, node: IPEndpoint("127.0.0.1:80")!) }

    @Test func sourceIPStickinessKeepsAClientOnItsTarget() {
        let sticky = group(sticky: true)
        let first = sticky.routing.pick(for: key("198.51.100.7:1000"))
        // Without stickiness the tie-break would rotate; with it, the same client IP stays put.
        #expect(sticky.routing.pick(for: key("198.51.100.7:1001")) == first)
        #expect(sticky.routing.pick(for: key("198.51.100.7:1002")) == first)
        // Another client gets the next target.
        #expect(sticky.routing.pick(for: key("198.51.100.8:1000")) != first)
        let plain = group(sticky: false)
        let one = plain.routing.pick(for: key("198.51.100.7:1000"))
        #expect(plain.routing.pick(for: key("198.51.100.7:1001")) != one)
    }

    @Test func stickinessEndsWhenTheTargetStopsTakingFlows() {
        var sticky = group(sticky: true)
        let first = sticky.routing.pick(for: key("198.51.100.7:1000"))!
        _ = sticky.lifecycle.deregister(endpoint: sticky.targets[first].endpoint, now: 0)
        #expect(sticky.routing.pick(for: key("198.51.100.7:1001")) == 1 - first)
    }
}

/// An application load balancer's slow start (docs/alb.md §23): who enters it, who leaves it, and the
/// share of requests a target in it gets.
@Suite struct SlowStartTests {
    static let second: UInt64 = 1_000_000_000
    let endpoints = (1...3).map { IPEndpoint("127.0.0.1:900\($0)")! }

    func httpGroup(slowStart: Int = 30) -> TargetLifecycle {
        var configuration = TargetGroupConfiguration(name: "web", port: 80, targetType: .ip, targets: [])
        configuration.setProtocol(.http)
        configuration.slowStartSeconds = slowStart
        return TargetLifecycle(configuration: configuration, timeScale: 1)
    }

    func healthy(_ l: inout TargetLifecycle, _ endpoint: IPEndpoint, at now: UInt64) -> Int {
        let index = l.register(id: "\(endpoint)", endpoint: endpoint, now: now)
        _ = l.recordCheck(index, registration: l.targets[index].registration, passed: true, now: now)
        return index
    }

    @Test func theFirstTargetsGetAFullShareAndALaterOneStartsSlowly() {
        var l = httpGroup()
        let first = healthy(&l, endpoints[0], at: 0)
        #expect(l.targets[first].slowStartUntil == 0, "an empty group's first target: no slow start")
        let later = healthy(&l, endpoints[1], at: 5 * Self.second)
        #expect(l.targets[later].slowStartSince == 5 * Self.second)
        #expect(l.targets[later].slowStartUntil == 35 * Self.second)
        // A third, while the second is still warming: the first is warm, so the third starts slowly too.
        let third = healthy(&l, endpoints[2], at: 6 * Self.second)
        #expect(l.targets[third].slowStartUntil == 36 * Self.second)
    }

    @Test func unhealthyOrDeregisteredLeavesSlowStartAndHealthyAgainEntersIt() {
        var l = httpGroup()
        _ = healthy(&l, endpoints[0], at: 0)
        let index = healthy(&l, endpoints[1], at: 1 * Self.second)
        #expect(l.targets[index].slowStartUntil > 0)
        let registration = l.targets[index].registration
        for _ in 0..<l.configuration.healthCheck.unhealthyThreshold {
            _ = l.recordCheck(index, registration: registration, passed: false, now: 2 * Self.second)
        }
        #expect(l.targets[index].state != .healthy)
        #expect(l.targets[index].slowStartUntil == 0)
        for _ in 0..<l.configuration.healthCheck.healthyThreshold {
            _ = l.recordCheck(index, registration: registration, passed: true, now: 10 * Self.second)
        }
        #expect(l.targets[index].state == .healthy)
        #expect(l.targets[index].slowStartSince == 10 * Self.second)
        _ = l.deregister(endpoint: endpoints[1], now: 11 * Self.second)
        #expect(l.targets[index].slowStartUntil == 0)
        // Registered again while draining: healthy at once, and in slow start from then.
        _ = l.register(id: "again", endpoint: endpoints[1], now: 12 * Self.second)
        #expect(l.targets[index].state == .healthy)
        #expect(l.targets[index].slowStartSince == 12 * Self.second)
    }

    @Test func withoutSlowStartOrOnANetworkGroupNoTargetEntersIt() {
        var off = httpGroup(slowStart: 0)
        _ = healthy(&off, endpoints[0], at: 0)
        #expect(off.targets[healthy(&off, endpoints[1], at: Self.second)].slowStartUntil == 0)
        var configuration = TargetGroupConfiguration(name: "tcp", port: 80, targetType: .ip, targets: [])
        configuration.slowStartSeconds = 30
        var network = TargetLifecycle(configuration: configuration, timeScale: 1)
        _ = healthy(&network, endpoints[0], at: 0)
        #expect(network.targets[healthy(&network, endpoints[1], at: Self.second)].slowStartUntil == 0)
    }

    /// The share grows with the time in slow start: a quarter of the way in, the new target gets about a
    /// quarter of what the warm one gets; once it is over, as much.
    @Test func theShareOfRequestsGrowsLinearly() {
        var l = httpGroup(slowStart: 100)
        _ = healthy(&l, endpoints[0], at: 0)
        let warming = healthy(&l, endpoints[1], at: 0 + 1)
        let routing = RoutingGroup(
            configuration: l.configuration, targets: l.targets.map(RoutedTarget.init), crossZone: true,
            headerTemplates: (nil, nil), selector: TargetSelector(), stickyTargets: StickyTable())
        var generator = SystemRandomNumberGenerator()
        func counts(at now: UInt64) -> [Int] {
            var counts = [0, 0]
            for port in 0..<4000 {
                let key = FlowKey(client: IPEndpoint("198.51.100.1:\(1024 + port)")!, node: endpoints[0])
                let index = routing.pickSlowStarting(for: key, nodeZone: "", now: now) {
                    Double.random(in: 0..<1, using: &generator)
                }
                counts[index!] += 1
            }
            return counts
        }
        let quarter = counts(at: 25 * Self.second + 1)
        let ratio = Double(quarter[warming]) / Double(quarter[1 - warming])
        #expect(ratio > 0.17 && ratio < 0.35, "a quarter in: \(quarter)")
        let half = counts(at: 50 * Self.second + 1)
        let halfRatio = Double(half[warming]) / Double(half[1 - warming])
        #expect(halfRatio > 0.4 && halfRatio < 0.62, "half way: \(half)")
        #expect(counts(at: 100 * Self.second + 1) == [2000, 2000], "over: round robin again")
        #expect(routing.slowStartEnds == 100 * Self.second + 1)
    }
}
