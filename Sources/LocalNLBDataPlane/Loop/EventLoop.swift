import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// A listener endpoint as the loops see it: one socket per loop (SO_REUSEPORT), opened and closed by
/// the control plane.
package struct Listener: Sendable {
    /// Every loop's socket for this endpoint, by loop; empty once the control plane retired it.
    package var loopFDs: [Int32]
    /// Where the sockets are bound (the kernel's port when the model asked for port 0).
    package var endpoint: IPEndpoint
    /// The endpoint as the model gives it (port 0: any), which the control plane matches the model by.
    package var requested: IPEndpoint
    package var configIndex: Int
    package var groupIndex: Int
    /// The nodes of the listener's load balancer: where its flows to targets leave from.
    package var nodes: [LoadBalancerNode]
    /// The zone of the node this socket listens on.
    package var zone: String
    /// The load balancer it is a listener of (the metrics' label, kept after the listener closes).
    package var loadBalancerName = ""
    /// A UDP socket (of a `UDP` or `TCP_UDP` listener), taking datagrams rather than connections.
    package var isUDP = false
    package var idleNanoseconds: UInt64
    package var connectNanoseconds: UInt64
    /// A TLS listener's server side (its certificate, policy and ALPN); nil for TCP.
    package var tls: TLSContext?
    /// Towards a `TLS` target group: the client side with AWS's backend policy; nil otherwise.
    package var backendTLS: TLSClientContext?
    /// An Application Load Balancer's listener: its clients speak HTTP to the loop's proxy.
    package var http: HTTPListenerSettings?
    /// A network load balancer listener's weighted forward (docs/target-groups.md §3): each new flow to
    /// one of these groups by weight; `weightTotal` 0: every flow to `groupIndex`.
    package var weighted: [(index: Int, weight: Int)] = []
    package var weightTotal = 0
    /// Target group stickiness of the weighted forward: how long a client address stays with its group
    /// (0: off), and the table that keeps it.
    package var groupStickyNanoseconds: UInt64 = 0
    package var groupStickiness: GroupStickyTable?

    package var isOpen: Bool { !loopFDs.isEmpty }

    package init(
        loopFDs: [Int32], endpoint: IPEndpoint, requested: IPEndpoint? = nil, configIndex: Int, groupIndex: Int,
        nodes: [LoadBalancerNode],
        zone: String, isUDP: Bool = false, idleNanoseconds: UInt64, connectNanoseconds: UInt64
    ) {
        self.loopFDs = loopFDs
        self.endpoint = endpoint
        self.requested = requested ?? endpoint
        self.configIndex = configIndex
        self.groupIndex = groupIndex
        self.nodes = nodes
        self.zone = zone
        self.isUDP = isUDP
        self.idleNanoseconds = idleNanoseconds
        self.connectNanoseconds = connectNanoseconds
    }
}

/// What the control plane publishes to every loop: all a loop routes new flows by. Immutable once
/// sent; a loop swaps it in between events, and a flow keeps the facts it started with (its mode,
/// its target's address and counter).
package struct RoutingSnapshot: Sendable {
    package var configuration: Configuration
    package var groups: [RoutingGroup]
    package var listeners: [Listener]
    package var tickNanoseconds: UInt64

    package init(configuration: Configuration, groups: [RoutingGroup], listeners: [Listener], tickNanoseconds: UInt64) {
        self.configuration = configuration
        self.groups = groups
        self.listeners = listeners
        self.tickNanoseconds = tickNanoseconds
    }
}

/// One epoll loop on its own thread: it accepts clients on its listener sockets, picks a target,
/// connects, and moves bytes both ways (Flow/). It owns its flows, pipes and counters; everything
/// else reaches it as a `RoutingSnapshot` or a job through its mailbox (`LoopHandle`).
package final class EventLoop {
    package enum Kind: UInt8 {
        case listener = 1
        case flowClient = 2
        case flowTarget = 3
        case tick = 4
        case mailbox = 5
        case udpListener = 6
        case udpTarget = 7
        case tlsClient = 8
        case tlsPlain = 9
        case httpClient = 10
        case httpTarget = 11
    }

    package struct ListenerState {
        package var shared: Listener
        /// This loop's socket (-1 once closed or retired).
        package var fd: Int32
        var pausedUntil: UInt64 = 0
        /// Flows this loop accepted here: NewFlowCount per node.
        package var newFlows = 0
        /// An application load balancer's own answers here, counted whatever group (or none) the listener
        /// forwards to: CloudWatch's LoadBalancer dimension.
        package var elbAnswers = ELBAnswers()
    }

    package let handle: LoopHandle
    package var index: Int { handle.index }
    /// How many loops there are: flow ids step by it.
    package let loopCount: Int
    package let options: LoadBalancerOptions
    package let poller: Poller
    package var configuration: Configuration
    package var groups: [RoutingGroup]
    /// This loop's CloudWatch counters, by group index: only ever added to, never replaced by a
    /// snapshot; `GET /metrics` sums them over the loops.
    package var groupMetrics: [GroupMetrics] = []
    package var listeners: [ListenerState] = []
    package var flows = Slab<Flow>()
    /// UDP flows, and each by its client and listener socket.
    var udpFlows = Slab<UDPFlow>()
    /// Every open flow by id, for `GET /flows` pages.
    var flowOrder = FlowOrder()
    /// The TCP flows' connect and idle deadlines (`Flow/Timers.swift`).
    package var timers = FlowTimers()
    /// When the loop's timer is set to ring next.
    var tickArmedAt: UInt64 = .max
    var udpFlowTable: [UDPFlowKey: Int] = [:]
    var liveUDPFlows = 0
    var lastUDPBoundWarning: UInt64 = 0
    /// A datagram in transit from a target: the largest UDP payload fits.
    let datagramBuffer = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 16)
    /// Datagrams from clients, many per call: made when the first UDP listener is read.
    var datagramBatch: DatagramBatch?
    var pipes: PipePool
    var nextFlowID: UInt64 = 0
    package var liveFlows = 0
    package var now: UInt64 = 0
    package var tickNanoseconds: UInt64
    package var draining = false
    var drainDeadline: UInt64 = 0
    package var finished = false
    /// When each warning about the machine's set-up was last logged (`warnAtMostEvery10s`).
    var lastTransparentWarning: UInt64 = 0
    var lastPortWarning: UInt64 = 0
    var lastTLSWarning: UInt64 = 0
    /// The TLS listeners' clients: their sessions and decrypted sides (TLSBridge.swift).
    var tlsBridges = Slab<TLSBridge>()
    var handshakingBridges = 0
    /// The Application Load Balancer listeners' client connections (HTTP/HTTPProxy.swift).
    var httpSessions = Slab<HTTPSession>()
    var liveHTTPSessions = 0
    var httpPool = HTTPTargetPool()
    /// Target connections stay in the epoll set from connect to close, their events keyed by descriptor:
    /// the session using it (its index), `idleTarget` while it waits in the pool, `closedIdleTarget` once
    /// the target has hung up on it there. Taking it from the pool and giving it back costs no system call.
    var httpTargetOwners: [Int32] = []
    var traceRandomState: UInt64 = 0
    /// Target address → the source the kernel's routing picks for it (nil: no route), asked again
    /// each tick. A flow whose node address is that source needs no bind.
    var routeSources: [IPAddress: IPAddress?] = [:]
    /// The loop's buffer for small messages (recv then send); as large as the smallest pipe (64 KiB),
    /// so what send leaves over always fits into an empty pipe.
    let copyBuffer: UnsafeMutableRawPointer
    static let copyBufferSize = 65536
    /// A splice that moves less than this goes back to recv and send for the next bytes.
    static let smallRead = 4096
    /// At most this many forgotten (idle-expired) flows keep their sockets; more are reset at once.
    static let maximumExpiredFlows = 4096
    var expiredFlows = 0
    static let listenerEvents = CLNB_EPOLLIN

    /// Made on the loop's own thread, from descriptors the control plane opened (so a failure to open
    /// them is reported before anything runs).
    package init(
        handle: LoopHandle, descriptors: Poller.Descriptors, snapshot: RoutingSnapshot, loopCount: Int,
        options: LoadBalancerOptions
    ) {
        self.handle = handle
        self.loopCount = loopCount
        self.options = options
        poller = Poller(descriptors)
        configuration = snapshot.configuration
        groups = snapshot.groups
        groupMetrics = snapshot.groups.map { _ in GroupMetrics() }
        tickNanoseconds = snapshot.tickNanoseconds
        copyBuffer = .allocate(byteCount: Self.copyBufferSize, alignment: 16)
        pipes = PipePool()
        now = monotonicNanoseconds()
        // Registering these cannot fail on a fresh epoll short of a broken kernel.
        try! poller.add(poller.tick, events: CLNB_EPOLLIN, token: token(.tick, 0, 0))
        try! poller.add(handle.wake.fd, events: CLNB_EPOLLIN, token: token(.mailbox, 0, 0))
        adoptListeners(snapshot.listeners)
    }

    package func token(_ kind: Kind, _ index: Int, _ generation: UInt32) -> UInt64 {
        EventToken.make(kind.rawValue, index, generation)
    }

    /// Runs until told to shut down and drained. The mailbox is closed before any descriptor, so the
    /// control plane never sends a job to a loop whose descriptors are gone.
    package func run() {
        for job in handle.takeJobs(starting: true) { job(self) }
        now = monotonicNanoseconds()
        armTick()
        while !finished {
            let count: Int
            do {
                count = try poller.wait()
            } catch {
                options.log("event loop \(index): \(error); its flows are reset")
                beginShutdown(reason: "event loop \(index) failed")
                drainDeadline = 0
                resetRemainingFlows()
                break
            }
            now = monotonicNanoseconds()
            for i in 0..<count { dispatch(token: poller.datas[i], events: poller.events[i]) }
        }
        for job in handle.end() { job(self) }
        closeResources()
        // Everything this loop opened (client and target sockets, pipes) is closed by now.
        DescriptorLedger.assertNoneOpenedByThisThread("event loop \(index)")
        handle.controlWake.ring()
    }

    package func closeResources() {
        for flow in flows where flow.state != .free { resetBoth(flow) }
        closeTLSBridges()
        closeHTTPSessions()
        endUDPFlows(.shutdown)
        datagramBuffer.deallocate()
        pipes.closeAll()
        copyBuffer.deallocate()
        poller.close()
    }

    package func dispatch(token: UInt64, events: UInt32) {
        let index = EventToken.index(token)
        switch Kind(rawValue: EventToken.kind(token)) {
        case .listener:
            acceptClients(listenerIndex: index)
        case .flowClient, .flowTarget:
            let flow = flows[index]
            guard flow.state != .free, flow.generation & 0xFF_FFFF == EventToken.generation(token) else { return }
            let fromClient = EventToken.kind(token) == Kind.flowClient.rawValue
            flowEvent(flow, fromClient: fromClient, events: events)
        case .tlsClient, .tlsPlain:
            let bridge = tlsBridges[index]
            guard bridge.inUse, bridge.generation & 0xFF_FFFF == EventToken.generation(token) else { return }
            tlsEvent(bridge, events: events, fromPlain: EventToken.kind(token) == Kind.tlsPlain.rawValue)
        case .httpClient:
            let session = httpSessions[index]
            guard session.inUse, session.generation & 0xFF_FFFF == EventToken.generation(token) else { return }
            httpEvent(session, events: events, fromTarget: false)
        case .httpTarget:
            httpTargetEvent(fd: Int32(index), events: events)
        case .udpListener:
            receiveDatagrams(listenerIndex: index)
        case .udpTarget:
            let flow = udpFlows[index]
            guard flow.targetFD >= 0, flow.generation & 0xFF_FFFF == EventToken.generation(token) else { return }
            targetDatagrams(flow)
        case .tick:
            poller.readTick()
            tick()
        case .mailbox:
            handle.wake.drain()
            for job in handle.takeJobs() { job(self) }
        case nil:
            preconditionFailure("epoll token of unknown kind")
        }
    }

    // MARK: Routing snapshots

    /// Takes the control plane's snapshot, keeping this loop's own counters.
    package func adopt(_ snapshot: RoutingSnapshot) {
        groups = snapshot.groups
        // The loop's own counters stay where they are: a snapshot carries none.
        while groupMetrics.count < groups.count { groupMetrics.append(GroupMetrics()) }
        configuration = snapshot.configuration
        if !draining { tickNanoseconds = snapshot.tickNanoseconds }
        adoptListeners(snapshot.listeners)
    }

    /// Takes the control plane's listener sockets (same indices): waits on new ones, stops waiting on
    /// those retired, before the control plane closes them.
    func adoptListeners(_ shared: [Listener]) {
        for position in shared.indices {
            let old = position < listeners.count ? listeners[position] : nil
            let fd = draining || !shared[position].isOpen ? -1 : shared[position].loopFDs[index]
            var state = ListenerState(shared: shared[position], fd: fd)
            state.newFlows = old?.newFlows ?? 0
            state.elbAnswers = old?.elbAnswers ?? ELBAnswers()
            if let old, old.fd >= 0 {
                if old.fd == fd {
                    state.pausedUntil = old.pausedUntil
                } else if old.pausedUntil == 0 {
                    poller.remove(old.fd)
                }
            }
            if fd >= 0 && fd != old?.fd {
                if shared[position].isUDP {
                    try? poller.add(fd, events: CLNB_EPOLLIN, token: token(.udpListener, position, 0))
                } else {
                    try? poller.add(fd, events: Self.listenerEvents, token: token(.listener, position, 0))
                }
            }
            if position < listeners.count {
                listeners[position] = state
            } else {
                listeners.append(state)
            }
        }
    }

    // MARK: Accepting

    func acceptClients(listenerIndex: Int) {
        let listener = listeners[listenerIndex]
        guard listener.fd >= 0 else { return }
        for _ in 0..<64 {
            do {
                guard case .done(let (fd, client)) = try Socket.accept(listener.fd) else { return }
                if let context = listener.shared.tls {
                    startTLS(listenerIndex: listenerIndex, clientFD: fd, client: client, context: context)
                } else if listener.shared.http != nil {
                    startHTTP(listenerIndex: listenerIndex, clientFD: fd, client: client)
                } else {
                    startFlow(listenerIndex: listenerIndex, clientFD: fd, client: client)
                }
            } catch  where error.errno == .tooManyOpenFiles || error.errno == .fileTableFull {
                // Out of descriptors: forgotten (idled-out) flows give theirs back first; if there were
                // none, stop accepting here for a moment rather than spin on a ready listener.
                if resetExpiredFlows() > 0 { continue }
                options.log(
                    "listener \(listener.shared.endpoint): \(error.errno) — pausing accepts for 100 ms (raise ulimit -n)"
                )
                poller.remove(listener.fd)
                listeners[listenerIndex].pausedUntil = now + 100_000_000
                return
            } catch {
                // ECONNABORTED and friends: that client is gone, the next one may not be.
                continue
            }
        }
    }

    // MARK: Shutdown

    /// Stops accepting and starts draining this loop's flows; they get until `drainSeconds` from now.
    package func beginShutdown(reason: String) {
        guard !draining else { return }
        draining = true
        // A UDP flow has nothing to drain: no datagram is in flight inside the balancer.
        endUDPFlows(.shutdown)
        for position in listeners.indices where listeners[position].fd >= 0 {
            if listeners[position].pausedUntil == 0 { poller.remove(listeners[position].fd) }
            listeners[position].fd = -1
        }
        drainDeadline = now + UInt64(max(0, options.drainSeconds) * 1e9)
        // HTTP connections between requests close now; a request in flight gets its answer, with
        // `Connection: close`, and then its connection closes.
        closeIdleHTTPSessions()
        if liveFlows == 0 && liveHTTPSessions == 0 {
            finished = true
        } else {
            tickNanoseconds = min(tickNanoseconds, 50_000_000)
        }
    }

    /// Logs a warning that every flow would repeat, once per 10 s at most.
    func warnAtMostEvery10s(_ last: inout UInt64, _ message: String) {
        if onceEvery10s(&last, now: now) { options.log(message) }
    }
}

extension IOResult {
    package var isDone: Bool {
        if case .done = self { return true }
        return false
    }
}

extension IPAddress {
    package var isUnspecifiedAddress: Bool {
        switch self {
        case .v4(let a): return a.isUnspecified
        case .v6(let a): return a.isUnspecified
        }
    }
}
