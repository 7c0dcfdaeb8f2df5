import CLocalNLB
import Glibc
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol
import Synchronization

/// How the world outside the control plane's thread asks it to stop, and how a loop says it ended.
package final class ControlBell: Sendable {
    package let wake: EventFD
    let stopRequested = Atomic<Bool>(false)

    package init() throws(SystemError) { wake = try EventFD() }
}

/// The one owner of the load balancer's state: the configuration, the target groups with their
/// lifecycle and health checks, the listener sockets, the control API, reloads and signals. It runs on
/// the thread that called `LoadBalancer.run()`, with an epoll of its own, apart from the event loops:
/// nothing it does (a large `/flows`, a reload) waits in front of a flow's bytes.
///
/// It tells the loops what changed by publishing a `RoutingSnapshot` through their mailboxes: after a
/// timer or health check (only when routing moved), and synchronously after an API change or a reload,
/// so that the change has reached every loop before the API answers.
package final class ControlPlane {
    package enum Kind: UInt8 {
        case tick = 1
        case wake = 2
        case signal = 3
        case probe = 4
        case adminListener = 5
        case adminConnection = 6
        case dnsDatagram = 7
        case dnsListener = 8
        case dnsConnection = 9
    }

    package var configuration: Configuration
    package let options: LoadBalancerOptions
    package var groups: [TargetGroup]
    /// TLS listeners' certificates, and the local certificate authority (TLSCertificates.swift).
    package lazy var certificateStore = CertificateStore(directory: options.resolvedCertificateDirectory)
    /// HTTPS health checks' client side: the broadest backend policy, no verification of the target.
    lazy var healthCheckTLS = try! TLSClientContext(
        policy: SSLPolicy.all.first { $0.name == "ELBSecurityPolicy-TLS13-1-0-2021-06" }!)
    /// Every listener endpoint's sockets, one per loop (SO_REUSEPORT).
    package var listeners: [Listener] = []
    package let loops: [LoopHandle]
    /// Each loop's epoll and timer, made here (so failing is `init`'s error), handed to its thread.
    var loopDescriptors: [Poller.Descriptors?]
    package var threads: [pthread_t] = []
    package var started = false
    let bell: ControlBell
    package let poller: Poller
    var signalFD: Int32 = -1
    var adminFD: Int32 = -1
    package private(set) var adminEndpoint: IPEndpoint?
    var adminConnections = Slab<AdminConnection>()
    /// Control-plane listeners out of the poller for a moment: accept had no descriptor to give.
    var pausedAccepts: [PausedAccept] = []
    /// When the event log last said descriptors ran out (it says so at most every 10 s).
    var lastDescriptorWarning: UInt64 = 0
    /// When the event log last said a health check was skipped (at most every 10 s as well).
    var lastSkippedCheckWarning: UInt64 = 0
    /// Health checks not made for want of a descriptor, memory or port, by target group name.
    var healthChecksSkipped: [String: Int] = [:]
    package var probes = Slab<HealthProbe>()
    package var now: UInt64
    package var tickNanoseconds: UInt64
    package var draining = false
    /// Flows open when the shutdown began, for the last line of the log.
    var flowsAtShutdown = 0
    package var finished = false
    var resourcesClosed = false
    /// A timer or health check ran in this batch of events: if that changed which targets take flows,
    /// the loops get a new snapshot after it.
    var routingMayHaveChanged = false
    /// What the loops last got: `routingFingerprint()` of the groups.
    var publishedFingerprint = 0
    /// Each target's registration, state and reason as the event log last told them, by group.
    var loggedTargets: [[LoggedTarget]] = []
    /// Each network listener's target group stickiness table, by load balancer and port: kept while the
    /// listener is, whatever republishes it.
    var groupStickiness: [String: GroupStickyTable] = [:]
    /// When this load balancer was made (`CreatedTime`).
    let createdTime = rfc3339Now()
    /// When each load balancer the API created was created (those of the file: `createdTime`).
    var loadBalancerCreatedTimes: [String: String] = [:]
    /// The region of the Query API request being answered (its SigV4 scope's); nil between requests.
    var queryRegion: String?
    /// The region a request sees: the Query API request's, else the home region.
    var requestRegion: String { queryRegion ?? names.region }
    /// When each load balancer made through an API turns `active` (it is `provisioning` until then).
    var loadBalancerActiveAt: [String: UInt64] = [:]
    /// What `--persist` last wrote, so an unchanged model is not written again.
    package var persisted: String?
    /// The DNS responder's sockets (UDP, TCP listener), where they are bound, and its TCP connections.
    var dnsUDP: Int32 = -1
    var dnsTCP: Int32 = -1
    package var dnsEndpoint: IPEndpoint?
    var dnsConnections: [Int32: DNSConnection] = [:]
    /// Queries answered: `partial_availability_zone_affinity` keeps 85 in 100 in the asker's zone.
    var dnsQueries = 0
    /// What each load balancer's name last resolved to, and its healthy zones, as the event log said.
    var loggedDNS: [String: (zones: Set<String>, addresses: [IPAddress])] = [:]

    /// Opens every listener on every node address, the control API and the loops' descriptors. Fails
    /// with one clear line (port in use, address not on this machine) and leaves nothing open.
    package init(configuration: Configuration, options: LoadBalancerOptions, bell: ControlBell) throws {
        let start = monotonicNanoseconds()
        self.configuration = configuration
        self.options = options
        self.bell = bell
        now = start
        groups = configuration.targetGroups.map { TargetGroup($0, timeScale: options.timeScale, now: start) }
        tickNanoseconds = Self.tickInterval(configuration, timeScale: options.timeScale)
        let loopCount = max(1, options.eventLoops)
        var descriptors: [Poller.Descriptors?] = []
        var handles: [LoopHandle] = []
        var own: Poller.Descriptors?
        do {
            for index in 0..<loopCount {
                handles.append(try LoopHandle(index: index, controlWake: bell.wake))
                descriptors.append(try Poller.Descriptors.make())
            }
            own = try Poller.Descriptors.make()
        } catch {
            descriptors.forEach { $0?.close() }
            throw error
        }
        loops = handles
        loopDescriptors = descriptors
        poller = Poller(own!)
        do {
            try poller.add(poller.tick, events: CLNB_EPOLLIN, token: token(.tick, 0, 0))
            try poller.add(bell.wake.fd, events: CLNB_EPOLLIN, token: token(.wake, 0, 0))
            // serve --persist keeps certificates (imported, requested, issued) beside the authority; any
            // daemon reads back what one kept.
            certificateStore.persists = options.persists
            certificateStore.loadSaved(log: options.log)
            try openListeners()
            assignZones()
            if let admin = configuration.admin {
                do {
                    adminFD = try Socket.listen(on: admin.address, backlog: 64)
                } catch {
                    throw ListenerError(
                        description:
                            "control API \(admin.address): \(Self.explain(error)); set Admin.Address to another port")
                }
                adminEndpoint = admin.address.port == 0 ? Socket.localEndpoint(adminFD) : admin.address
                try poller.add(adminFD, events: CLNB_EPOLLIN, token: token(.adminListener, 0, 0))
            }
            try openDNS()
            if options.handlesSignals {
                signalFD = try SignalDescriptor.make()
                try poller.add(signalFD, events: CLNB_EPOLLIN, token: token(.signal, 0, 0))
            }
        } catch {
            closeResources()
            throw error
        }
    }

    deinit {
        // Made but never run: the listeners and descriptors are still open.
        if !resourcesClosed { closeResources() }
    }

    package func token(_ kind: Kind, _ index: Int, _ generation: UInt32) -> UInt64 {
        EventToken.make(kind.rawValue, index, generation)
    }

    /// The address each listener socket is bound to, in the order of `configuration.listeners` × nodes
    /// (a port 0 in the configuration shows here as the port the kernel chose).
    package var listenerEndpoints: [(listener: Int, endpoint: IPEndpoint)] {
        listeners.filter { $0.isOpen && !$0.isUDP }.map { ($0.configIndex, $0.endpoint) }
    }

    /// The address each UDP listener socket is bound to (of `UDP` and `TCP_UDP` listeners).
    package var udpListenerEndpoints: [(listener: Int, endpoint: IPEndpoint)] {
        listeners.filter { $0.isOpen && $0.isUDP }.map { ($0.configIndex, $0.endpoint) }
    }

    package var snapshot: RoutingSnapshot {
        RoutingSnapshot(
            configuration: configuration, groups: groups.map(\.routing), listeners: listeners,
            tickNanoseconds: tickNanoseconds)
    }

    // MARK: Set-up

    func openListeners() throws {
        if let conflict = configuration.endpointConflict {
            throw ListenerError(description: "\(conflict.path): \(conflict.message)")
        }
        for (configIndex, endpoint, udp) in configuration.listenerEndpoints {
            let listener = configuration.listeners[configIndex]
            let noGroup = listener.targetGroupName.isEmpty && listener.defaultAction != nil
            guard
                let groupIndex = noGroup
                    ? -1 : groups.firstIndex(where: { $0.configuration.name == listener.targetGroupName })
            else {
                throw ListenerError(
                    description: "listener :\(listener.port): no target group \(listener.targetGroupName)")
            }
            let fds: [Int32]
            do {
                fds =
                    udp
                    ? try Socket.datagramGroup(on: endpoint, count: loops.count)
                    : try Socket.listenGroup(on: endpoint, count: loops.count)
            } catch {
                throw ListenerError(description: "listener \(udp ? "UDP " : "")\(endpoint): \(Self.explain(error))")
            }
            let bound = endpoint.port == 0 ? (Socket.localEndpoint(fds[0]) ?? endpoint) : endpoint
            var opened = Listener(
                loopFDs: fds, endpoint: bound, requested: endpoint, configIndex: configIndex, groupIndex: groupIndex,
                nodes: configuration.nodes(of: listener), zone: configuration.zone(of: endpoint.ip, listener),
                idleNanoseconds: Self.idleNanoseconds(listener, udp: udp, timeScale: options.timeScale),
                connectNanoseconds: UInt64(listener.connectTimeoutSeconds * 1e9))
            opened.isUDP = udp
            opened.loadBalancerName = listener.loadBalancerName
            do {
                opened.tls = try tlsContext(listener, in: configuration)
                opened.backendTLS = try backendTLSContext(listener, in: configuration)
                opened.http = httpSettings(listener, in: configuration) { name in
                    groups.firstIndex { $0.configuration.name == name }
                }
                applyWeights(&opened, listener) { name in groups.firstIndex { $0.configuration.name == name } }
            } catch {
                fds.forEach(closeDescriptor)
                throw error
            }
            listeners.append(opened)
        }
    }

    /// docs/flows.md §10: a UDP flow is forgotten after a fixed 120 s without a datagram; a TCP flow
    /// after the listener's `tcp.idle_timeout.seconds`. Both scaled by `--time-scale`.
    package static func idleNanoseconds(_ listener: ListenerConfiguration, udp: Bool, timeScale: Double) -> UInt64 {
        UInt64(Double(udp ? 120 : listener.idleTimeoutSeconds) * timeScale * 1e9)
    }

    /// A tenth of the shortest timer (idle timeout, connect timeout, health-check interval and timeout,
    /// draining periods), between 5 ms and 1 s.
    static func tickInterval(_ configuration: Configuration, timeScale: Double) -> UInt64 {
        var shortest = configuration.listeners.map {
            min(Double($0.idleTimeoutSeconds) * timeScale, $0.connectTimeoutSeconds)
        }
        for group in configuration.targetGroups {
            let check = group.healthCheck
            shortest.append(Double(min(check.intervalSeconds, check.timeoutSeconds)) * timeScale)
            for seconds in [group.deregistrationDelaySeconds, group.unhealthyDrainingIntervalSeconds] where seconds > 0
            {
                shortest.append(Double(seconds) * timeScale)
            }
        }
        return UInt64(min(max((shortest.min() ?? 1) / 10, 0.005), 1) * 1e9)
    }

    static func explain(_ error: Error) -> String {
        guard let error = error as? SystemError else { return "\(error)" }
        switch error.errno {
        case .addressInUse: return "address already in use (is another localnlb, or another server, on that port?)"
        case .addressNotAvailable:
            return "address not available: it is not an address of this machine (check SubnetMappings)"
        case .accessDenied: return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        default: return "\(error)"
        }
    }

    /// Closes what is still open: the listener sockets (a run closes them when it begins to drain;
    /// a balancer that never ran, or whose loops could not start, here), the control API, probes, and
    /// the descriptors of loops that never started.
    package func closeResources() {
        resourcesClosed = true
        closeListeners()
        for connection in adminConnections where connection.fd >= 0 { closeAdmin(connection) }
        if adminFD >= 0 {
            forgetPausedAccept(adminFD)
            closeDescriptor(adminFD)
            adminFD = -1
        }
        closeDNS()
        for probe in probes where probe.fd >= 0 {
            closeDescriptor(probe.fd)
            probe.fd = -1
        }
        if signalFD >= 0 { closeDescriptor(signalFD) }
        for index in loopDescriptors.indices {
            loopDescriptors[index]?.close()
            loopDescriptors[index] = nil
        }
        poller.close()
    }

    func closeListeners() {
        for index in listeners.indices where listeners[index].isOpen {
            if started { logListener(listeners[index], opened: false) }
            listeners[index].loopFDs.forEach(closeDescriptor)
            listeners[index].loopFDs = []
        }
    }

    // MARK: Running

    /// Starts every loop on a thread of its own, then runs the control plane on this thread until
    /// stopped and every loop has drained. Closes everything before it returns.
    package func run() throws {
        defer {
            for thread in threads { pthread_join(thread, nil) }
            closeResources()
        }
        try startLoops()
        poller.armTick(tickNanoseconds)
        while !finished {
            let count: Int
            do {
                count = try poller.wait()
            } catch {
                beginShutdown(reason: "control plane failed (\(error))")
                throw error
            }
            now = monotonicNanoseconds()
            for i in 0..<count { dispatch(token: poller.datas[i], events: poller.events[i]) }
            if routingMayHaveChanged {
                routingMayHaveChanged = false
                if routingFingerprint() != publishedFingerprint { publish(wait: false) }
            }
            if draining && loops.allSatisfy(\.hasEnded) { finished = true }
        }
        if flowsAtShutdown > 0 {
            let reset = loops.reduce(0) { $0 + $1.resetAtShutdown.load(ordering: .relaxed) }
            let drained = max(0, flowsAtShutdown - reset)
            options.log("stopped: \(drained) \(drained == 1 ? "flow" : "flows") drained, \(reset) reset")
        }
    }

    /// If a thread cannot be made, the loops started are stopped and joined, and the error says what
    /// to do: the kernel would keep handing that loop's sockets clients that nobody accepts.
    func startLoops() throws {
        started = true
        for listener in listeners where listener.isOpen { logListener(listener, opened: true) }
        // What the file sets apart from AWS's defaults, once, as changes from them.
        for group in groups {
            let configured = group.configuration
            var defaults = TargetGroupConfiguration(
                name: configured.name, port: configured.port, targetType: configured.targetType, targets: [])
            // An HTTP group's defaults are ALB's: only what the file sets apart from them is a change.
            defaults.setProtocol(configured.protocolName)
            logAttributeChanges(defaults, configured, by: "file")
        }
        logTargetChanges()
        let snapshot = snapshot
        publishedFingerprint = routingFingerprint()
        let cpus = options.pinsLoops ? CPUAffinity.allowedCPUs() : []
        if !cpus.isEmpty {
            let placed = loops.map { "\(cpus[$0.index % cpus.count])" }.joined(separator: ", ")
            options.log("event loops on CPUs \(placed) (--cpu-affinity auto)")
        }
        for handle in loops {
            let descriptors = loopDescriptors[handle.index]!
            let (count, options) = (loops.count, options)
            let cpu = cpus.isEmpty ? nil : cpus[handle.index % cpus.count]
            do {
                threads.append(
                    try startThread {
                        if let cpu, let error = CPUAffinity.pinThisThread(to: cpu) {
                            options.log(
                                "event loop \(handle.index): cannot stay on CPU \(cpu) (\(error)); it runs anywhere")
                        }
                        EventLoop(
                            handle: handle, descriptors: descriptors, snapshot: snapshot, loopCount: count,
                            options: options
                        ).run()
                    })
                loopDescriptors[handle.index] = nil
            } catch {
                for loop in loops {
                    _ = loop.post { $0.beginShutdown(reason: "event loop \(handle.index) not started") }
                }
                for loop in loops where loopDescriptors[loop.index] != nil { _ = loop.end() }
                throw ListenerError(
                    description:
                        "cannot start event loop \(handle.index) (pthread_create: \(error.errno)); "
                        + "run with fewer --event-loops")
            }
        }
    }

    package func dispatch(token: UInt64, events: UInt32) {
        let index = EventToken.index(token)
        let generation = EventToken.generation(token)
        switch Kind(rawValue: EventToken.kind(token)) {
        case .tick:
            poller.readTick()
            tick()
            routingMayHaveChanged = true
        case .wake:
            bell.wake.drain()
            if bell.stopRequested.load(ordering: .acquiring) {
                beginShutdown(reason: "stop requested")
            } else if let ended = loops.first(where: \.hasEnded) {
                beginShutdown(reason: "event loop \(ended.index) ended")
            }
        case .signal:
            let signal = SignalDescriptor.read(signalFD)
            let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
            if signal == SIGHUP {
                reloadConfiguration()
            } else if draining {
                // A second signal does not wait for the drain: the flows left are reset now.
                options.log("\(name) again: stopping now; the flows still open are reset")
                for loop in loops { loop.post { $0.stopDrainingNow() } }
            } else {
                beginShutdown(reason: name)
            }
        case .probe:
            probeEvent(index: index, generation: generation, events: events)
            routingMayHaveChanged = true
        case .adminListener:
            acceptAdmin()
        case .adminConnection:
            // A change made through the API reaches every loop before it is answered (`handle`).
            adminEvent(index: index, generation: generation)
        case .dnsDatagram:
            answerDatagrams()
        case .dnsListener:
            acceptDNS()
        case .dnsConnection:
            dnsConnectionEvent(fd: Int32(index))
        case nil:
            preconditionFailure("epoll token of unknown kind")
        }
    }

    package func tick() {
        for groupIndex in groups.indices {
            apply(groups[groupIndex].lifecycle.advance(now: now), group: groupIndex)
            if !draining {
                for targetIndex in groups[groupIndex].lifecycle.dueChecks(now: now) {
                    startProbe(group: groupIndex, target: targetIndex)
                }
            }
        }
        expireProbes()
        expireAdminConnections()
        expireDNSConnections()
        expireZonalShifts()
        resumePausedAccepts()
        poller.armTick(tickNanoseconds)
    }

    // MARK: Publishing

    /// Sends every loop the current snapshot, then runs `then` on each. With `wait` (API changes,
    /// reloads), every loop has it before this returns; otherwise (timers, health checks) it follows
    /// through the mailboxes. Before the loops start, they take the snapshot as they start.
    package func publish(wait: Bool, then: (@Sendable (EventLoop) -> Void)? = nil) {
        assignZones()
        // The target changes first, then the zone health they moved (said here, not on every tick).
        if started { logTargetChanges() }
        logZoneHealth()
        publishedFingerprint = routingFingerprint()
        guard started else { return }
        let snapshot = snapshot
        let job: @Sendable (EventLoop) -> Void = { loop in
            loop.adopt(snapshot)
            then?(loop)
        }
        for loop in loops {
            if wait { _ = loop.perform(job) } else { loop.post(job) }
        }
    }

    /// What the loops route by: every target's state and whether it takes new flows, and each group's
    /// fail-open. Timers and health checks change it now and then; it is compared after them, without
    /// allocating, and a snapshot goes out only when it moved.
    func routingFingerprint() -> Int {
        var hasher = Hasher()
        for group in groups {
            hasher.combine(group.lifecycle.failingOpenZones)
            hasher.combine(group.lifecycle.crossZone)
            hasher.combine(group.targets.count)
            for target in group.targets {
                hasher.combine(target.registration)
                hasher.combine(target.state)
                hasher.combine(target.reason)
                hasher.combine(target.takesNewFlows)
                hasher.combine(target.slowStartUntil)
            }
        }
        return hasher.finalize()
    }

    /// Carries out what a target's change of state does to its flows, on every loop: the loops take
    /// the new target states first, so none picks the target again.
    package func apply(_ effects: [LifecycleEffect], group: Int) {
        guard !effects.isEmpty else { return }
        publish(wait: false) { $0.apply(effects, group: group) }
    }

    /// Every group's counters summed over the loops.
    func metricsOfAllLoops() -> [GroupMetrics] {
        var total = groups.map { _ in GroupMetrics() }
        for loop in loops {
            let theirs = loop.perform { $0.groupMetrics } ?? []
            for index in theirs.indices where index < total.count { total[index].add(theirs[index]) }
        }
        return total
    }

    /// Flows accepted on each listener socket (by `listeners` index), summed over the loops.
    func newFlowsOfAllLoops() -> [Int] {
        var total = listeners.map { _ in 0 }
        for loop in loops {
            let theirs = loop.perform { $0.listeners.map(\.newFlows) } ?? []
            for index in theirs.indices where index < total.count { total[index] += theirs[index] }
        }
        return total
    }

    /// An application load balancer's own answers on each listener socket (by `listeners` index),
    /// summed over the loops.
    func elbAnswersOfAllLoops() -> [ELBAnswers] {
        var total = listeners.map { _ in ELBAnswers() }
        for loop in loops {
            let theirs = loop.perform { $0.listeners.map(\.elbAnswers) } ?? []
            for index in theirs.indices where index < total.count { total[index].add(theirs[index]) }
        }
        return total
    }

    // MARK: Shutdown

    /// Every loop stops accepting and drains; once none waits on the listener sockets any more, they
    /// are closed. `run()` returns when every loop has ended.
    package func beginShutdown(reason: String) {
        guard !draining else { return }
        draining = true
        var total = 0
        for loop in loops {
            total +=
                loop.perform {
                    $0.beginShutdown(reason: reason)
                    return $0.liveFlows
                } ?? 0
        }
        closeListeners()
        flowsAtShutdown = total
        if total > 0 {
            let flows = total == 1 ? "1 flow" : "\(total) flows"
            options.log(
                "\(reason): stopped accepting; draining \(flows) for up to \(options.drainSeconds) s "
                    + "(a second \(reason == "SIGINT" ? "SIGINT" : "SIGTERM") stops at once)")
        }
        if !started || loops.allSatisfy(\.hasEnded) { finished = true }
    }
}
