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
