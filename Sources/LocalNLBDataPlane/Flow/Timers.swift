import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// A loop's clock: connect timeouts, idle expiry (docs/flows.md §5), draining at shutdown.
extension EventLoop {
    // MARK: Idle expiry

    /// docs/flows.md §5: after the idle timeout the flow is forgotten. Both sockets stay open and quiet;
    /// whichever side sends (or closes) next gets a RST, the other is told nothing until it does too.
    func expire(_ flow: Flow) {
        let configured = configuration.listeners[listeners[flow.listenerIndex].shared.configIndex].idleTimeoutSeconds
        var detail =
            "\(ListenerConfiguration.attributeIndex.key(of: \ListenerConfiguration.idleTimeoutSeconds)) \(configured)"
        if options.timeScale != 1 {
            detail += ", scaled by --time-scale \(options.timeScale) to \(Double(configured) * options.timeScale) s"
        }
        writeRecord(flow, .idleTimeout, detail: detail)
        releaseTarget(flow)
        flow.state = .expired
        timers.cancel(flow.index)
        expiredFlows += 1
        // A forgotten flow keeps both sockets, quiet, until a side sends or closes: a client that only
        // waits sees nothing, as behind an NLB (closing them later would show it a RST at twice the
        // timeout). They cannot pile up: past `maximumExpiredFlows` the newest are reset at once, and
        // a loop short of descriptors resets them first (`resetExpiredFlows`).
        if expiredFlows > Self.maximumExpiredFlows { resetExpired(flow) }
    }

    /// Out of descriptors: every forgotten flow is reset, its sockets freed for live ones. Returns
    /// how many there were.
    @discardableResult
    func resetExpiredFlows() -> Int {
        guard expiredFlows > 0 else { return 0 }
        var count = 0
        for flow in flows where flow.state == .expired {
            groupMetrics[flow.groupIndex].tcpELBResetCount += 1
            resetExpired(flow)
            count += 1
        }
        return count
    }

    /// docs/flows.md §5: a TCP keepalive from either side keeps the flow, though it moves no bytes: a
    /// segment received since the flow went quiet (counted an eighth of the timeout in) is one. The
    /// kernel is asked twice per quiet spell, never per packet; keepalives at most 7/8 of the idle
    /// timeout apart are always seen.
    func expireUnlessKeptAlive(_ flow: Flow) {
        if flow.quietSince == flow.lastActivity, segmentsReceived(flow) != flow.quietSegments {
            flow.lastActivity = now
        } else {
            expire(flow)
        }
    }

    func segmentsReceived(_ flow: Flow) -> UInt32 {
        (Socket.segmentsReceived(flow.clientFD) ?? 0) &+ (Socket.segmentsReceived(flow.targetFD) ?? 0)
    }

    func expiredFlowEvent(_ flow: Flow, fromClient: Bool, events: UInt32) {
        guard events & (CLNB_EPOLLIN | CLNB_EPOLLRDHUP | CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0 else { return }
        groupMetrics[flow.groupIndex].tcpELBResetCount += 1
        if fromClient, flow.clientFD >= 0 {
            Socket.closeWithReset(flow.clientFD)
            flow.clientFD = -1
        } else if !fromClient, flow.targetFD >= 0 {
            Socket.closeWithReset(flow.targetFD)
            flow.targetFD = -1
        }
        if flow.clientFD < 0 && flow.targetFD < 0 { release(flow) }
    }

    func resetExpired(_ flow: Flow) {
        if flow.clientFD >= 0 { Socket.closeWithReset(flow.clientFD) }
        if flow.targetFD >= 0 { Socket.closeWithReset(flow.targetFD) }
        flow.clientFD = -1
        flow.targetFD = -1
        release(flow)
    }

    // MARK: Timers

    package func tick() {
        routeSources.removeAll(keepingCapacity: true)
        for (position, listener) in listeners.enumerated()
        where listener.pausedUntil != 0 && now >= listener.pausedUntil {
            listeners[position].pausedUntil = 0
            if listener.fd >= 0 {
                try? poller.add(listener.fd, events: Self.listenerEvents, token: token(.listener, position, 0))
            }
        }
        // Only the flows whose time has come: the others cost nothing here.
        while let slot = timers.popDue(now: now) { flowTimerFired(flows[slot]) }
        expireUDPFlows()
        expireTLSHandshakes()
        expireHTTPSessions()
        if draining && now >= drainDeadline {
            resetRemainingFlows()
            closeHTTPSessions()
            finished = true
        }
        if !finished { armTick() }
    }

    /// A flow's deadline came: a connect that took too long, an idle checkpoint, or the idle timeout.
    func flowTimerFired(_ flow: Flow) {
        switch flow.state {
        case .connecting:
            if now >= connectDeadline(flow) {
                // docs/flows.md §5: no answer in time means a RST for the client.
                finish(flow, .connectTimeout, resetClient: true, resetTarget: true, detail: nil)
            } else {
                scheduleTimer(flow, at: connectDeadline(flow))
            }
        case .established:
            let idle = listeners[flow.listenerIndex].shared.idleNanoseconds
            let quiet = now &- flow.lastActivity
            if quiet >= idle {
                expireUnlessKeptAlive(flow)
            } else if quiet >= idle / 8 && flow.quietSince != flow.lastActivity {
                // An eighth of the idle timeout without bytes: count the segments from here.
                flow.quietSegments = segmentsReceived(flow)
                flow.quietSince = flow.lastActivity
            }
            if flow.state == .established { scheduleIdleCheck(flow) }
        case .free, .expired:
            // Held until a side speaks (`expiredFlowEvent`), or gone: no timer.
            break
        }
    }

    /// An established flow's next look: an eighth of the idle timeout into a quiet spell (to count
    /// segments from), then the timeout itself. Bytes moving meanwhile only move `lastActivity`; the
    /// timer finds that when it fires and looks again later.
    func scheduleIdleCheck(_ flow: Flow) {
        let idle = listeners[flow.listenerIndex].shared.idleNanoseconds
        let step = flow.quietSince == flow.lastActivity ? idle : max(idle / 8, 1)
        scheduleTimer(flow, at: flow.lastActivity &+ step)
    }

    static let longestTimer: UInt64 = 20 * 86_400 * 1_000_000_000

    /// When a connecting flow gives up: its listener's connect timeout after it began (the flow keeps
    /// no deadline of its own; the heap holds it).
    func connectDeadline(_ flow: Flow) -> UInt64 {
        flow.started &+ listeners[flow.listenerIndex].shared.connectNanoseconds
    }

    func scheduleTimer(_ flow: Flow, at deadline: UInt64) {
        // The heap's 32-bit milliseconds hold deadlines within 24 days of now: a later one (a huge idle
        // timeout from a lenient file, a large --time-scale) rings at 20 days and is looked at again.
        let deadline = min(deadline, now &+ Self.longestTimer)
        timers.schedule(flow.index, at: deadline)
        if Self.coalesced(deadline) < tickArmedAt { armTick() }
    }

    /// Flow deadlines ring on 5 ms boundaries: the flows due within one are handled in one wake (a
    /// loop with thousands of flows due over a second wakes 200 times, not thousands), and none is more
    /// than 5 ms late.
    static let timerGranularity: UInt64 = 5_000_000

    static func coalesced(_ deadline: UInt64) -> UInt64 {
        let rounded = deadline / timerGranularity &* timerGranularity
        return rounded == deadline ? deadline : rounded &+ timerGranularity
    }

    /// Sets the loop's timer for the earliest of its next periodic tick and the first flow deadline.
    package func armTick() {
        var next = now &+ tickNanoseconds
        if let earliest = timers.earliest(now: now), Self.coalesced(earliest) < next { next = Self.coalesced(earliest) }
        // A deadline already past rings at once (0 would disarm the timer).
        let delay = next > now ? next - now : 1000
        poller.armTick(delay)
        tickArmedAt = now &+ delay
    }

    /// The drain time is over (or the loop failed): every flow left is reset.
    func resetRemainingFlows() {
        var reset = 0
        for flow in flows where flow.state != .free {
            if flow.state != .expired { reset += 1 }
            resetBoth(flow)
        }
        handle.resetAtShutdown.wrappingAdd(reset, ordering: .relaxed)
    }

    /// A second SIGINT or SIGTERM while draining: every flow left is reset now and the loop ends.
    package func stopDrainingNow() {
        guard draining, !finished else { return }
        resetRemainingFlows()
        closeHTTPSessions()
        finished = true
    }

    func resetBoth(_ flow: Flow) {
        if flow.state == .expired {
            resetExpired(flow)
        } else {
            finish(flow, .shutdown, resetClient: true, resetTarget: true, detail: nil)
        }
    }

    /// What a target's change of state does to this loop's flows (the control plane sends it to every
    /// loop, after the snapshot with the new states, so no loop picks that target again).
    package func apply(_ effects: [LifecycleEffect], group: Int) {
        for effect in effects {
            switch effect {
            case .resetFlows(let target, let reason):
                for flow in flows
                where (flow.state == .connecting || flow.state == .established) && flow.groupIndex == group
                    && flow.targetIndex == target
                {
                    groupMetrics[group].tcpELBResetCount += 1
                    finish(flow, reason, resetClient: true, resetTarget: true, detail: nil)
                }
            }
        }
    }

    /// DeleteListener: the flows that came in through these listeners are reset, both sides.
    package func resetFlows(ofListeners closed: Set<Int>) {
        for flow in flows
        where (flow.state == .connecting || flow.state == .established) && closed.contains(flow.listenerIndex) {
            groupMetrics[flow.groupIndex].tcpELBResetCount += 1
            finish(flow, .listenerDeleted, resetClient: true, resetTarget: true, detail: nil)
        }
    }
}
