import CLocalNLB
import Foundation
import Glibc
import ProxyProtocol
import Synchronization

/// How a `LoadBalancer` runs, beyond its configuration.
public struct LoadBalancerOptions: Sendable {
    public var flowLog: FlowLog = .standardError
    /// On SIGTERM/SIGINT or `stop()`: how long flows may finish before they are reset.
    public var drainSeconds: Double = 10
    /// Handle SIGTERM and SIGINT (the daemon). Off when embedded (tests, demo).
    public var handlesSignals = false
    /// Where operational messages go (one line each).
    public var log: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data(("localnlb: " + message + "\n").utf8))
    }
    /// Called for every ended flow, on the thread of the loop that carried it: with several loops,
    /// from several threads at once.
    public var onFlowEnd: (@Sendable (FlowRecord) -> Void)?
    /// Multiplies every AWS timer: health-check interval and timeout, deregistration delay, unhealthy
    /// draining interval, idle timeout. `0.01` turns 300 s of draining into 3 s.
    public var timeScale: Double = 1
    /// The configuration file, re-read on SIGHUP (the daemon only).
    public var configPath: String?
    /// Whether a re-read configuration is checked with `--strict`.
    public var strict = false
    /// How many epoll loops, each on its own thread, accept and move flows. Loop 0 also runs the health
    /// checks, the control API, signals and reloads. The daemon uses one per core.
    public var eventLoops = 1

    public init() {}
}

/// What `LoadBalancer.init` can fail with: the listener and the fix, in one line.
public struct ListenerError: Error, CustomStringConvertible {
    public var description: String
}

/// The data plane: epoll loops that accept clients on every listener × node address, pick a target,
/// connect from the client's or the node's address, optionally send a PROXY header, then splice bytes
/// both ways.
///
/// With `eventLoops` above 1, this object is loop 0 and owns the others (`workers`). Each loop has its
/// own socket on every listener endpoint (SO_REUSEPORT: the kernel shares new clients out by their
/// addresses) and owns the flows it accepted. Loop 0 alone runs the target lifecycle, health checks,
/// the control API, signals and reloads, and sends the other loops each change of targets through
/// their mailboxes. Targets' flow counts are atomics shared by all, so least connections needs no lock.
public final class LoadBalancer {
    // Epoll user data: kind (8 bits) | generation (24 bits) | index (32 bits), so an event for a
    // descriptor that was closed and reused is recognised and dropped.
    enum Kind: UInt64 {
        case listener = 1
        case flowClient = 2
        case flowTarget = 3
        case tick = 4
        case wake = 5
        case signal = 6
        case probe = 7
        case adminListener = 8
        case adminConnection = 9
    }

    struct Listener {
        /// This loop's socket (-1 once closed).
        var fd: Int32
        /// Every loop's socket for this endpoint, by loop (SO_REUSEPORT); loop 0 opens and closes them.
        var loopFDs: [Int32]
        var endpoint: IPEndpoint
        var configIndex: Int
        var groupIndex: Int
        var idleNanoseconds: UInt64
        var connectNanoseconds: UInt64
        var pausedUntil: UInt64 = 0
    }

    var configuration: Configuration
    var options: LoadBalancerOptions
    /// 0 for the loop that also runs health checks, the control API, signals and reloads.
    let loopIndex: Int
    /// The other loops, on loop 0 only; each runs on its own thread while `run()` runs.
    var workers: [LoadBalancer] = []
    /// How many loops there are: each listener has a socket per loop, and flow ids step by it.
    let loopCount: Int
    /// Work sent to this loop by loop 0, run on this loop's thread (see EventLoops.swift).
    let mailbox = Mutex(Mailbox())
    /// Loop 0 ran timers or health checks in this batch of events: if that changed which targets take
    /// flows, the other loops get a copy of the groups after it.
    var groupsMayHaveChanged = false
    /// What the other loops last got: `routingFingerprint` of the groups.
    var publishedFingerprint = 0
    let epoll: Int32
    let tickFD: Int32
    let wakeFD: Int32
    var signalFD: Int32 = -1
    var listeners: [Listener] = []
    var groups: [TargetGroup]
    var flows = Slab<Flow>()
    var pipePool: [(Int32, Int32)] = []
    var nextFlowID: UInt64 = 0
    var liveFlows = 0
    var now: UInt64 = 0
    var tickNanoseconds: UInt64
    var draining = false
    var drainDeadline: UInt64 = 0
    var finished = false
    var resourcesClosed = false
    var probes = Slab<HealthProbe>()
    var adminFD: Int32 = -1
    /// Where the control API listens (the kernel's port when the configuration said port 0).
    public private(set) var adminEndpoint: IPEndpoint?
    var adminConnections = Slab<AdminConnection>()
    /// When each warning about the machine's set-up was last logged (`warnAtMostEvery10s`).
    var lastTransparentWarning: UInt64 = 0
    var lastPortWarning: UInt64 = 0
    /// Target address → the source the kernel's routing picks for it (nil: no route), asked again
    /// each tick. A flow whose node address is that source needs no bind.
    var routeSources: [IPAddress: IPAddress?] = [:]
    let eventCapacity = 256
    let events: UnsafeMutablePointer<UInt32>
    let datas: UnsafeMutablePointer<UInt64>
    /// The loop's buffer for small messages (recv then send); as large as the smallest pipe (64 KiB),
    /// so what send leaves over always fits into an empty pipe.
    let copyBuffer: UnsafeMutableRawPointer
    static let copyBufferSize = 65536
    static let noPipeDetail =
        "no pipe of 64 KiB (out of descriptors, or past fs.pipe-user-pages-soft: raise it, or run as root)"
    /// What a splicing direction may hold in its pipe. As root, 1 MiB: a bulk transfer then takes a
    /// sixteenth of the splice calls and wake-ups a 64 KiB pipe needs (single-stream throughput +40 %
    /// here). Other users keep the kernel's 64 KiB: `fs.pipe-user-pages-soft` (64 MiB of pipes per
    /// user) would run out after 64 pipes of 1 MiB, and the kernel then hands out pipes of 8 KiB.
    let splicePipeSize = geteuid() == 0 ? 1 << 20 : 65536
    /// A splice that moves less than this goes back to recv and send for the next bytes.
    static let smallRead = 4096
    /// Spare pipes kept for reuse; each is two descriptors.
    static let maximumPooledPipes = 256
    /// At most this many forgotten (idle-expired) flows keep their sockets; more are reset at once.
    static let maximumExpiredFlows = 4096
    var expiredFlows = 0
    static let listenerEvents = CLNB_EPOLLIN

    /// Binds every listener on every node address. Fails with one clear line (port in use, address
    /// not on this machine) and leaves nothing open.
    public convenience init(configuration: Configuration, options: LoadBalancerOptions = LoadBalancerOptions())
        throws
    {
        let start = monotonicNanoseconds()
        ignoreSIGPIPE()
        raiseOpenFileLimit()
        try self.init(
            loop: 0, configuration: configuration, options: options,
            groups: configuration.targetGroups.map { TargetGroup($0, timeScale: options.timeScale, now: start) },
            loopCount: max(1, options.eventLoops))
        do {
            try openListeners()
            if let admin = configuration.admin {
                do {
                    adminFD = try Socket.listen(on: admin.address, backlog: 64)
                } catch {
                    throw ListenerError(
                        description:
                            "control API \(admin.address): \(Self.explain(error)); set Admin.Address to another port")
                }
                adminEndpoint = admin.address.port == 0 ? Socket.localEndpoint(adminFD) : admin.address
                try register(adminFD, events: CLNB_EPOLLIN, token: token(.adminListener, 0, 0))
            }
            if options.handlesSignals {
                signalFD = try syscallNonBlocking("signalfd") { clnb_signalfd_daemon() }
                try register(signalFD, events: CLNB_EPOLLIN, token: token(.signal, 0, 0))
            }
            for index in 1..<loopCount {
                workers.append(try LoadBalancer(workerOf: self, index: index))
            }
        } catch {
            for worker in workers { worker.closeResources() }
            closeResources()
            throw error
        }
    }

    /// One loop's own descriptors: epoll, the tick timer and the wake-up eventfd.
    init(
        loop: Int, configuration: Configuration, options: LoadBalancerOptions, groups: [TargetGroup],
        loopCount: Int
    ) throws {
        self.loopIndex = loop
        self.configuration = configuration
        self.options = options
        self.groups = groups
        self.loopCount = loopCount
        epoll = try syscallNonBlocking("epoll_create1") { clnb_epoll_create() }
        tickFD = try syscallNonBlocking("timerfd_create") { clnb_timerfd_create() }
        wakeFD = try syscallNonBlocking("eventfd") { clnb_eventfd() }
        events = .allocate(capacity: eventCapacity)
        datas = .allocate(capacity: eventCapacity)
        copyBuffer = .allocate(byteCount: Self.copyBufferSize, alignment: 16)
        // One periodic tick drives idle expiry, connect timeouts, health checks and draining.
        tickNanoseconds = Self.tickInterval(configuration, timeScale: options.timeScale)
        do {
            try register(tickFD, events: CLNB_EPOLLIN, token: token(.tick, 0, 0))
            try register(wakeFD, events: CLNB_EPOLLIN, token: token(.wake, 0, 0))
        } catch {
            closeResources()
            throw error
        }
    }

    deinit {
        if !resourcesClosed {
            // Made but never run: the listeners and loop descriptors are still open.
            closeResources()
        }
        events.deallocate()
        datas.deallocate()
        copyBuffer.deallocate()
    }

    /// The address each listener socket is bound to, in the order of `configuration.listeners` × nodes
    /// (a port 0 in the configuration shows here as the port the kernel chose).
    public var listenerEndpoints: [(listener: Int, endpoint: IPEndpoint)] {
        listeners.filter { $0.fd >= 0 }.map { ($0.configIndex, $0.endpoint) }
    }

    /// Asks a running loop, from any thread, to stop accepting and drain. Safe to call more than once.
    public func stop() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    // MARK: Set-up

    func openListeners() throws {
        for (configIndex, listener) in configuration.listeners.enumerated() {
            guard let groupIndex = groups.firstIndex(where: { $0.configuration.name == listener.targetGroupName })
            else {
                throw ListenerError(
                    description: "listener :\(listener.port): no target group \(listener.targetGroupName)")
            }
            for node in configuration.nodes {
                for address in node.addresses {
                    let endpoint = IPEndpoint(ip: address, port: listener.port)
                    let fds: [Int32]
                    do {
                        fds = try Socket.listenGroup(on: endpoint, count: loopCount)
                    } catch {
                        throw ListenerError(description: "listener \(endpoint): \(Self.explain(error))")
                    }
                    let fd = fds[0]
                    let bound = endpoint.port == 0 ? (Socket.localEndpoint(fd) ?? endpoint) : endpoint
                    listeners.append(
                        Listener(
                            fd: fd, loopFDs: fds, endpoint: bound, configIndex: configIndex, groupIndex: groupIndex,
                            idleNanoseconds: UInt64(Double(listener.idleTimeoutSeconds) * options.timeScale * 1e9),
                            connectNanoseconds: UInt64(listener.connectTimeoutSeconds * 1e9)))
                    try register(fd, events: Self.listenerEvents, token: token(.listener, listeners.count - 1, 0))
                }
            }
        }
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

    func register(_ fd: Int32, events: UInt32, token: UInt64) throws(SystemError) {
        try syscallNonBlocking("epoll_ctl") { clnb_epoll_ctl(epoll, CLNB_EPOLL_CTL_ADD, fd, events, token) }
    }

    func token(_ kind: Kind, _ index: Int, _ generation: UInt32) -> UInt64 {
        kind.rawValue << 56 | UInt64(generation & 0xFF_FFFF) << 32 | UInt64(UInt32(index))
    }

    /// Closes what this loop holds. Loop 0 also closes every loop's listener sockets still open (a run
    /// closes them when it begins to drain; a balancer that never ran, or could not start its loops, here).
    func closeResources() {
        resourcesClosed = true
        if loopIndex == 0 {
            for index in listeners.indices where listeners[index].fd >= 0 {
                listeners[index].loopFDs.forEach(closeDescriptor)
                listeners[index].fd = -1
            }
        }
        for connection in adminConnections where connection.fd >= 0 { closeAdmin(connection) }
        if adminFD >= 0 {
            closeDescriptor(adminFD)
            adminFD = -1
        }
        for probe in probes where probe.fd >= 0 {
            closeDescriptor(probe.fd)
            probe.fd = -1
        }
        for (r, w) in pipePool {
            closeDescriptor(r)
            closeDescriptor(w)
        }
        pipePool.removeAll()
        if signalFD >= 0 { closeDescriptor(signalFD) }
        closeDescriptor(wakeFD)
        closeDescriptor(tickFD)
        closeDescriptor(epoll)
    }

    // MARK: The loop

    /// Runs until stopped (signal or `stop()`) and drained, the other loops on threads of their own.
    /// Closes everything before it returns.
    public func run() throws {
        _ = clnb_timerfd_arm(tickFD, Int64(tickNanoseconds))
        let threads: [pthread_t]
        do {
            threads = try startWorkers()
        } catch {
            closeResources()
            throw error
        }
        defer {
            stopWorkers(threads)
            closeResources()
        }
        while !finished {
            let count = clnb_epoll_wait(epoll, events, datas, Int32(eventCapacity), -1)
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError(call: "epoll_wait", errno: .current)
            }
            now = monotonicNanoseconds()
            for i in 0..<Int(count) {
                dispatch(token: datas[i], events: events[i])
            }
            if groupsMayHaveChanged {
                groupsMayHaveChanged = false
                if routingFingerprint() != publishedFingerprint { shareGroups(wait: false) }
            }
        }
    }

    func dispatch(token: UInt64, events: UInt32) {
        let index = Int(UInt32(truncatingIfNeeded: token))
        let generation = UInt32((token >> 32) & 0xFF_FFFF)
        switch Kind(rawValue: token >> 56) {
        case .listener:
            acceptClients(listenerIndex: index)
        case .flowClient, .flowTarget:
            let flow = flows[index]
            guard flow.state != .free, flow.generation & 0xFF_FFFF == generation else { return }
            flowEvent(flow, index: index, fromClient: Kind(rawValue: token >> 56) == .flowClient, events: events)
        case .tick:
            var expirations: UInt64 = 0
            _ = Glibc.read(tickFD, &expirations, 8)
            tick()
            groupsMayHaveChanged = !workers.isEmpty
        case .wake:
            var value: UInt64 = 0
            _ = Glibc.read(wakeFD, &value, 8)
            if loopIndex == 0 {
                beginShutdown(reason: "stop requested")
            } else {
                runMailbox()
            }
        case .signal:
            let signal = clnb_signalfd_read(signalFD)
            if signal == SIGHUP {
                reloadConfiguration()
            } else {
                beginShutdown(reason: signal == SIGINT ? "SIGINT" : "SIGTERM")
            }
        case .probe:
            probeEvent(index: index, generation: generation, events: events)
            groupsMayHaveChanged = !workers.isEmpty
        case .adminListener:
            acceptAdmin()
        case .adminConnection:
            // A change made through the API reaches every loop before it is answered (`handle`).
            adminEvent(index: index, generation: generation)
        case nil:
            preconditionFailure("epoll token of unknown kind")
        }
    }

    // MARK: Accepting

    func acceptClients(listenerIndex: Int) {
        let listener = listeners[listenerIndex]
        guard listener.fd >= 0 else { return }
        for _ in 0..<64 {
            do {
                guard case .done(let (fd, client)) = try Socket.accept(listener.fd) else { return }
                startFlow(listenerIndex: listenerIndex, clientFD: fd, client: client)
            } catch  where error.errno == .tooManyOpenFiles || error.errno == .fileTableFull {
                // Out of descriptors: stop accepting here for a moment rather than spin on a ready listener.
                options.log(
                    "listener \(listener.endpoint): \(error.errno) — pausing accepts for 100 ms (raise ulimit -n)")
                _ = clnb_epoll_ctl(epoll, CLNB_EPOLL_CTL_DEL, listener.fd, 0, 0)
                listeners[listenerIndex].pausedUntil = now + 100_000_000
                return
            } catch {
                // ECONNABORTED and friends: that client is gone, the next one may not be.
                continue
            }
        }
    }

    func startFlow(listenerIndex: Int, clientFD: Int32, client: IPEndpoint) {
        let listener = listeners[listenerIndex]
        // Unique across loops: loop i of n numbers its flows i+1, i+1+n, i+1+2n…
        let id = nextFlowID &* UInt64(loopCount) &+ UInt64(loopIndex) &+ 1
        nextFlowID += 1
        groups[listener.groupIndex].metrics.newFlowCount += 1
        let node =
            listener.endpoint.ip.isUnspecifiedAddress
            ? (Socket.localEndpoint(clientFD) ?? listener.endpoint)
            : listener.endpoint
        let flow = allocateFlow()
        flow.id = id
        flow.listenerIndex = listenerIndex
        flow.groupIndex = listener.groupIndex
        flow.client = client
        flow.node = node
        flow.clientFD = clientFD
        flow.started = now
        flow.lastActivity = now
        flow.state = .connecting
        liveFlows += 1

        guard let targetIndex = groups[listener.groupIndex].pick(for: FlowKey(client: client, node: node)) else {
            finish(
                flow, .noTarget, resetClient: true, resetTarget: false, detail: "no registered target takes new flows")
            return
        }
        // Everything read from the group before it is changed: a copy alive across the change would
        // make every new flow copy the group's target list.
        let target = groups[listener.groupIndex].targets[targetIndex].endpoint
        let preserveClientIP = groups[listener.groupIndex].configuration.preserveClientIP
        let unhealthyRouted =
            groups[listener.groupIndex].lifecycle.failingOpen
            && groups[listener.groupIndex].targets[targetIndex].state != .healthy
        flow.proxyMode = groups[listener.groupIndex].configuration.proxyProtocol
        flow.targetIndex = targetIndex
        let targetFlows = groups[listener.groupIndex].targets[targetIndex].flowCount
        targetFlows.add(1)
        flow.targetFlows = targetFlows
        if unhealthyRouted { groups[listener.groupIndex].metrics.unhealthyRoutingFlowCount += 1 }

        do {
            flow.targetFD = try Socket.stream(for: target.ip)
        } catch {
            finish(flow, .connectFailed, resetClient: true, resetTarget: false, detail: "\(error)")
            return
        }
        if let failure = bindSource(flow, target: target, preserveClientIP: preserveClientIP) {
            finish(flow, .sourceBindFailed, resetClient: true, resetTarget: true, detail: failure)
            return
        }
        let connected: Bool
        do {
            connected = try Socket.connect(flow.targetFD, target).isDone
        } catch {
            switch error.errno {
            case .connectionRefused:
                groups[listener.groupIndex].metrics.tcpTargetResetCount += 1
                finish(flow, .connectRefused, resetClient: true, resetTarget: false, detail: "\(error.errno)")
            case .addressNotAvailable:
                groups[listener.groupIndex].metrics.portAllocationErrorCount += 1
                let message =
                    "no local port is free for another flow to target \(target) (\(error.errno)): widen "
                    + "net.ipv4.ip_local_port_range, register more targets, or send fewer concurrent flows"
                warnAtMostEvery10s(&lastPortWarning, message)
                finish(flow, .portAllocationError, resetClient: true, resetTarget: false, detail: message)
            default:
                finish(flow, .connectFailed, resetClient: true, resetTarget: false, detail: "\(error.errno)")
            }
            return
        }
        do {
            let flowIndex = flow.index
            let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
            try register(flow.clientFD, events: interest, token: token(.flowClient, flowIndex, flow.generation))
            try register(flow.targetFD, events: interest, token: token(.flowTarget, flowIndex, flow.generation))
        } catch {
            finish(flow, .connectFailed, resetClient: true, resetTarget: true, detail: "\(error)")
            return
        }
        flow.deadline = now + listener.connectNanoseconds
        if connected { targetConnected(flow) }
    }

    /// Logs a warning that every flow would repeat, once per 10 s at most.
    func warnAtMostEvery10s(_ last: inout UInt64, _ message: String) {
        guard last == 0 || now - last > 10_000_000_000 else { return }
        last = now
        options.log(message)
    }

    /// Binds the target connection's source: the client's address when preserved, else the node's.
    /// Returns a one-line explanation when that is impossible.
    func bindSource(_ flow: Flow, target: IPEndpoint, preserveClientIP: Bool) -> String? {
        let fd = flow.targetFD
        if preserveClientIP {
            let client = flow.client
            guard client.ip.isIPv6 == target.ip.isIPv6 else {
                return "preserve_client_ip.enabled: client \(client) and target \(target) are of different IP families"
            }
            // AWS-NLB.md §8: a loopback client address binds without privileges (the kernel picks the
            // port); any other needs IP_TRANSPARENT, and then keeps the client's port as an NLB does.
            if client.ip.isLoopback {
                Socket.setBindAddressNoPort(fd)
                do { try Socket.bind(fd, IPEndpoint(ip: client.ip, port: 0)) } catch {
                    return "cannot bind client address \(client.ip): \(error.errno)"
                }
                return nil
            }
            do {
                try Socket.setTransparent(fd, ipv6: client.ip.isIPv6)
            } catch {
                let message =
                    "preserve_client_ip.enabled needs IP_TRANSPARENT to connect from client \(client) "
                    + "(\(error.errno)): run as root or grant CAP_NET_ADMIN (setcap cap_net_admin+ep), and route the "
                    + "targets' replies back to this host (README: client IP preservation); or set "
                    + "preserve_client_ip.enabled to false"
                warnAtMostEvery10s(&lastTransparentWarning, message)
                return message
            }
            do {
                try Socket.bind(fd, client)
            } catch  where error.errno == .addressInUse {
                // The client runs on this machine and holds that port itself: let the kernel choose one.
                Socket.setBindAddressNoPort(fd)
                do { try Socket.bind(fd, IPEndpoint(ip: client.ip, port: 0)) } catch {
                    return "cannot bind client address \(client.ip): \(error.errno)"
                }
            } catch {
                return "cannot bind client address \(client): \(error.errno)"
            }
            return nil
        }
        let source = nodeAddress(for: flow, family: target.ip)
        let routed: IPAddress?
        if let cached = routeSources[target.ip] {
            routed = cached
        } else {
            routed = Socket.routeSource(towards: target)
            routeSources[target.ip] = routed
        }
        // The kernel picks this very address: connect without bind (two system calls fewer per flow).
        if routed == source { return nil }
        Socket.setBindAddressNoPort(fd)
        do { try Socket.bind(fd, IPEndpoint(ip: source, port: 0)) } catch {
            return "cannot bind node address \(source): \(error.errno)"
        }
        return nil
    }

    /// The node address a flow leaves from towards a target of `family`: the address the client
    /// reached if it is of that family, else another of the node's (the configuration ensures one).
    func nodeAddress(for flow: Flow, family: IPAddress) -> IPAddress {
        if flow.node.ip.isIPv6 == family.isIPv6 { return flow.node.ip }
        for node in configuration.nodes where node.addresses.contains(flow.node.ip) {
            if let address = node.addresses.first(where: { $0.isIPv6 == family.isIPv6 }) { return address }
        }
        return configuration.nodes.lazy.flatMap(\.addresses).first { $0.isIPv6 == family.isIPv6 } ?? flow.node.ip
    }

    // MARK: Flows

    func allocateFlow() -> Flow {
        flows.take(Flow.init(index:))
    }

    /// A pipe for one direction, from the pool. A flow holds pipes only while bytes are in them, so an
    /// idle flow costs its two sockets and nothing more.
    func acquirePipe(_ d: inout Direction) -> Bool {
        if d.hasPipe { return true }
        if let (r, w) = pipePool.popLast() {
            (d.pipeRead, d.pipeWrite) = (r, w)
            return true
        }
        var fds: (Int32, Int32) = (-1, -1)
        let ok = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { clnb_pipe2($0) == 0 }
        }
        guard ok else { return false }
        // Every pipe must take a whole copy buffer (what send left over goes into an empty pipe).
        let grown = splicePipeSize > Self.copyBufferSize && clnb_pipe_set_size(fds.0, Int32(splicePipeSize)) >= 0
        if !grown && clnb_pipe_get_size(fds.0) < Self.copyBufferSize
            && clnb_pipe_set_size(fds.0, Int32(Self.copyBufferSize)) < 0
        {
            closeDescriptor(fds.0)
            closeDescriptor(fds.1)
            return false
        }
        (d.pipeRead, d.pipeWrite) = fds
        return true
    }

    /// Gives an empty pipe back to the pool (a full pool closes it); a pipe with bytes in it stays.
    func releasePipe(_ d: inout Direction, discardingBytes: Bool = false) {
        guard d.hasPipe, d.buffered == 0 || discardingBytes else { return }
        if d.buffered == 0 && pipePool.count < Self.maximumPooledPipes {
            pipePool.append((d.pipeRead, d.pipeWrite))
        } else {
            // Bytes left in the pipe, or enough spare pipes: it cannot, or need not, be reused.
            closeDescriptor(d.pipeRead)
            closeDescriptor(d.pipeWrite)
        }
        d.pipeRead = -1
        d.pipeWrite = -1
    }

    /// `targetEvents`: the event that told the connect finished (nil: it finished at once).
    func targetConnected(_ flow: Flow, targetEvents: UInt32? = nil) {
        flow.state = .established
        flow.lastActivity = now
        // The client socket inherited TCP_NODELAY from its listener.
        Socket.setNoDelay(flow.targetFD)
        if flow.proxyMode != .off {
            // The header goes into the client→target pipe ahead of any client byte, so it leaves in
            // the same segment as the first payload (on_first_ack_with_payload) or on its own at once.
            guard acquirePipe(&flow.clientToTarget) else { return endFlow(flow, after: .noPipe, fromClient: true) }
            let length = groups[flow.groupIndex].writeProxyHeader(
                flow.proxyMode, client: flow.client, node: flow.node, to: copyBuffer)
            let written = Glibc.write(flow.clientToTarget.pipeWrite, copyBuffer, length)
            precondition(written == length, "an empty pipe takes a PROXY header whole")
            flow.clientToTarget.buffered = length
            flow.clientToTarget.holdUntilPayload =
                groups[flow.groupIndex].configuration.headerPlacement == .onFirstAckWithPayload
        }
        // What the client sent while we connected came with edges already spent: read it whole only if
        // its FIN came too. The target's bytes come with the event that finished the connect: without
        // EPOLLIN there, the target has sent nothing yet, and what it sends later brings its own edge.
        let targetSent = targetEvents.map { $0 & (CLNB_EPOLLIN | CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) != 0 } ?? true
        let targetClosing = targetEvents.map { $0 & (CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) != 0 } ?? true
        pump(
            flow, targetToClient: targetSent, readClientToEnd: targetEvents == nil || flow.clientClosing,
            readTargetToEnd: targetClosing)
    }

    func flowEvent(_ flow: Flow, index: Int, fromClient: Bool, events: UInt32) {
        switch flow.state {
        case .free:
            return
        case .expired:
            expiredFlowEvent(flow, fromClient: fromClient, events: events)
        case .connecting:
            if fromClient {
                // Data or FIN from the client waits in its socket until the target is up; a reset does not.
                if events & CLNB_EPOLLERR != 0
                    || (events & CLNB_EPOLLHUP != 0 && Socket.pendingError(flow.clientFD) != nil)
                {
                    groups[flow.groupIndex].metrics.tcpClientResetCount += 1
                    finish(flow, .clientRST, resetClient: false, resetTarget: true, detail: nil)
                } else if events & (CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) != 0 {
                    flow.clientClosing = true
                }
                return
            }
            guard events & (CLNB_EPOLLOUT | CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0 else { return }
            // A failed connect always comes with EPOLLERR: writable alone means connected, no
            // getsockopt(SO_ERROR) needed.
            if events & (CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0, let error = Socket.pendingError(flow.targetFD) {
                // AWS-NLB.md §5: a target that refuses means a RST for the client.
                let reason: CloseReason = error == .connectionRefused ? .connectRefused : .connectFailed
                groups[flow.groupIndex].metrics.tcpTargetResetCount += 1
                finish(flow, reason, resetClient: true, resetTarget: false, detail: "\(error)")
                return
            }
            targetConnected(flow, targetEvents: events)
        case .established:
            if events & CLNB_EPOLLERR != 0 {
                let fd = fromClient ? flow.clientFD : flow.targetFD
                if Socket.pendingError(fd) != nil {
                    sideReset(flow, client: fromClient)
                    return
                }
            }
            // Only the directions this event can move: readable means this side's bytes (or FIN) can
            // go on; writable matters only if bytes are waiting for this side. An EPOLLOUT edge after
            // each ACK is thus no syscall at all.
            let readable = events & (CLNB_EPOLLIN | CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) != 0
            let writable = events & (CLNB_EPOLLOUT | CLNB_EPOLLHUP) != 0
            let towards = fromClient ? flow.targetToClient : flow.clientToTarget
            let waiting = writable && towards.buffered > 0 && !towards.holdUntilPayload
            // A FIN behind the bytes brings no edge of its own: then the source is read up to it.
            let closing = events & (CLNB_EPOLLRDHUP | CLNB_EPOLLHUP) != 0
            if fromClient {
                pump(flow, clientToTarget: readable, targetToClient: waiting, readClientToEnd: closing)
            } else {
                pump(flow, clientToTarget: waiting, targetToClient: readable, readTargetToEnd: closing)
            }
        }
    }

    enum PumpOutcome {
        case ok
        case sourceReset
        case destinationReset
        /// No pipe could be had (out of descriptors).
        case noPipe
    }

    /// Moves what can move in both directions without blocking, then ends the flow if both are done.
    /// `read…ToEnd`: read that source until EAGAIN or EOF, even after a short read (a FIN is pending,
    /// or no event says what is waiting).
    func pump(
        _ flow: Flow, clientToTarget: Bool = true, targetToClient: Bool = true, readClientToEnd: Bool = true,
        readTargetToEnd: Bool = true
    ) {
        let before = flow.clientToTarget.bytes &+ flow.targetToClient.bytes
        let groupIndex = flow.groupIndex
        defer {
            let moved = flow.clientToTarget.bytes &+ flow.targetToClient.bytes &- before
            if moved > 0 {
                groups[groupIndex].metrics.processedBytes &+= moved
                if flow.state == .established { flow.lastActivity = now }
            }
        }
        if clientToTarget {
            let outcome = pumpDirection(
                &flow.clientToTarget, from: flow.clientFD, to: flow.targetFD, readToEnd: readClientToEnd,
                closesNext: flow.targetToClient.finSent)
            if outcome != .ok { return endFlow(flow, after: outcome, fromClient: true) }
        }
        if flow.clientToTarget.sourceEOF && flow.firstFIN == nil { flow.firstFIN = .clientFIN }
        if targetToClient {
            let outcome = pumpDirection(
                &flow.targetToClient, from: flow.targetFD, to: flow.clientFD, readToEnd: readTargetToEnd,
                closesNext: flow.clientToTarget.finSent)
            if outcome != .ok { return endFlow(flow, after: outcome, fromClient: false) }
        }
        if flow.targetToClient.sourceEOF && flow.firstFIN == nil { flow.firstFIN = .targetFIN }
        if flow.clientToTarget.finSent && flow.targetToClient.finSent {
            finish(flow, flow.firstFIN ?? .clientFIN, resetClient: false, resetTarget: false, detail: nil)
        }
    }

    /// `closesNext`: the other direction is finished, so this one's FIN ends the flow and the close
    /// that follows sends it (no shutdown call).
    func pumpDirection(
        _ d: inout Direction, from source: Int32, to destination: Int32, readToEnd: Bool, closesNext: Bool
    ) -> PumpOutcome {
        if d.sourceEOF && d.buffered == 0 {
            passOnFIN(&d, to: destination, closesNext: closesNext)
            return .ok
        }
        defer { releasePipe(&d) }
        if !d.splicing && d.buffered == 0 {
            switch copyDirection(&d, from: source, to: destination, readToEnd: readToEnd) {
            case .ok: break
            case let outcome: return outcome
            }
            if !d.splicing {
                passOnFIN(&d, to: destination, closesNext: closesNext)
                return .ok
            }
        }
        guard acquirePipe(&d) else { return .noPipe }
        while true {
            var progressed = false
            if !d.sourceEOF && d.buffered < splicePipeSize {
                let n = clnb_splice(source, d.pipeWrite, splicePipeSize - d.buffered)
                if n > 0 {
                    d.buffered += n
                    d.bytes += UInt64(n)
                    d.holdUntilPayload = false
                    progressed = true
                    if n < Self.smallRead { d.splicing = false }
                } else if n == 0 {
                    d.sourceEOF = true
                    d.holdUntilPayload = false
                    progressed = true
                } else if errno != EAGAIN && errno != EINTR {
                    return .sourceReset
                }
            }
            if d.buffered > 0 && !d.holdUntilPayload {
                let n = clnb_splice(d.pipeRead, destination, d.buffered)
                if n > 0 {
                    d.buffered -= n
                    progressed = true
                } else if n < 0 && errno != EAGAIN && errno != EINTR {
                    return .destinationReset
                }
            }
            if !progressed { break }
        }
        passOnFIN(&d, to: destination, closesNext: closesNext)
        return .ok
    }

    /// Small messages: one recv into the loop's buffer, one send. A recv that fills the buffer turns
    /// the direction to splicing (the caller goes on with it); what send cannot take now waits in the
    /// direction's pipe, and the splice path delivers it.
    func copyDirection(_ d: inout Direction, from source: Int32, to destination: Int32, readToEnd: Bool)
        -> PumpOutcome
    {
        while true {
            var received = 0
            repeat {
                received = Glibc.recv(source, copyBuffer, Self.copyBufferSize, 0)
            } while received < 0 && errno == EINTR
            if received == 0 {
                d.sourceEOF = true
                return .ok
            }
            if received < 0 { return errno == EAGAIN ? .ok : .sourceReset }
            switch sendCopied(&d, received, to: destination) {
            case .ok: break
            case let outcome: return outcome
            }
            if d.splicing || !readToEnd { return .ok }
        }
    }

    /// Sends `received` bytes of the copy buffer on; see `copyDirection`.
    func sendCopied(_ d: inout Direction, _ received: Int, to destination: Int32) -> PumpOutcome {
        d.bytes += UInt64(received)
        var sent = 0
        while sent < received {
            let n = Glibc.send(destination, copyBuffer + sent, received - sent, Int32(MSG_NOSIGNAL))
            if n > 0 {
                sent += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && errno == EAGAIN {
                break
            } else {
                return .destinationReset
            }
        }
        if sent < received {
            // The rest goes into the (empty) pipe, which holds a whole buffer; EPOLLOUT sends it on.
            guard acquirePipe(&d) else { return .noPipe }
            let rest = received - sent
            let written = Glibc.write(d.pipeWrite, copyBuffer + sent, rest)
            precondition(written == rest, "an empty pipe takes a whole copy buffer")
            d.buffered = rest
            d.splicing = true
            return .ok
        }
        if received == Self.copyBufferSize { d.splicing = true }
        return .ok
    }

    /// AWS passes a FIN on once everything before it has been delivered. When it is the flow's last,
    /// the flow ends at once and closing the socket sends it (its receive queue is empty: its peer's
    /// FIN was read), so no shutdown call.
    func passOnFIN(_ d: inout Direction, to destination: Int32, closesNext: Bool) {
        if d.sourceEOF && d.buffered == 0 && !d.finSent {
            if !closesNext { Socket.shutdownWrite(destination) }
            d.finSent = true
        }
    }

    /// Ends a flow after a direction failed: a reset of either side is passed on (`sideReset`); without
    /// a pipe, both sides are reset.
    func endFlow(_ flow: Flow, after outcome: PumpOutcome, fromClient: Bool) {
        switch outcome {
        case .ok: return
        case .sourceReset: sideReset(flow, client: fromClient)
        case .destinationReset: sideReset(flow, client: !fromClient)
        case .noPipe:
            finish(flow, .outOfDescriptors, resetClient: true, resetTarget: true, detail: Self.noPipeDetail)
        }
    }

    /// One side reset (or failed): AWS passes the RST to the other side.
    func sideReset(_ flow: Flow, client: Bool) {
        if client {
            groups[flow.groupIndex].metrics.tcpClientResetCount += 1
            finish(flow, .clientRST, resetClient: false, resetTarget: true, detail: nil)
        } else {
            groups[flow.groupIndex].metrics.tcpTargetResetCount += 1
            finish(flow, .targetRST, resetClient: true, resetTarget: false, detail: nil)
        }
    }

    /// Ends a flow: closes (or resets) both sockets, returns pipes and slot, writes the flow log.
    func finish(_ flow: Flow, _ reason: CloseReason, resetClient: Bool, resetTarget: Bool, detail: String?) {
        writeRecord(flow, reason, detail: detail)
        releaseTarget(flow)
        if flow.clientFD >= 0 { resetClient ? Socket.closeWithReset(flow.clientFD) : closeDescriptor(flow.clientFD) }
        if flow.targetFD >= 0 { resetTarget ? Socket.closeWithReset(flow.targetFD) : closeDescriptor(flow.targetFD) }
        flow.clientFD = -1
        flow.targetFD = -1
        release(flow)
    }

    func writeRecord(_ flow: Flow, _ reason: CloseReason, detail: String?) {
        guard options.flowLog.isEnabled || options.onFlowEnd != nil else { return }
        sourceAddress(flow)
        let group = groups[flow.groupIndex]
        let record = FlowRecord(
            id: flow.id, listener: listeners[flow.listenerIndex].endpoint, client: flow.client, node: flow.node,
            target: flow.targetIndex >= 0 ? group.targets[flow.targetIndex].endpoint : nil, source: flow.source,
            proxyHeader: flow.header, bytesFromClient: flow.clientToTarget.bytes,
            bytesFromTarget: flow.targetToClient.bytes, durationSeconds: Double(now &- flow.started) / 1e9,
            closeReason: reason, detail: detail)
        options.flowLog.write(record)
        options.onFlowEnd?(record)
    }

    /// The target connection's local address, asked of the kernel only when someone reads it.
    @discardableResult
    func sourceAddress(_ flow: Flow) -> IPEndpoint? {
        if flow.source == nil && flow.targetFD >= 0 && flow.state != .connecting {
            flow.source = Socket.localEndpoint(flow.targetFD)
        }
        return flow.source
    }

    /// The flow no longer counts against its target (it ended, or was forgotten by idle expiry).
    func releaseTarget(_ flow: Flow) {
        flow.targetFlows?.add(-1)
        flow.targetFlows = nil
        flow.targetIndex = -1
        releasePipe(&flow.clientToTarget, discardingBytes: true)
        releasePipe(&flow.targetToClient, discardingBytes: true)
    }

    func release(_ flow: Flow) {
        if flow.state == .expired { expiredFlows -= 1 }
        flow.generation &+= 1
        flow.reset()
        flows.release(flow.index)
        liveFlows -= 1
        if draining && liveFlows == 0 { finished = true }
    }

    // MARK: Idle expiry

    /// AWS-NLB.md §5: after the idle timeout the flow is forgotten. Both sockets stay open and quiet;
    /// whichever side sends (or closes) next gets a RST, the other is told nothing until it does too.
    func expire(_ flow: Flow) {
        let configured = configuration.listeners[listeners[flow.listenerIndex].configIndex].idleTimeoutSeconds
        var detail = "tcp.idle_timeout.seconds \(configured)"
        if options.timeScale != 1 {
            detail += ", scaled by --time-scale \(options.timeScale) to \(Double(configured) * options.timeScale) s"
        }
        writeRecord(flow, .idleTimeout, detail: detail)
        releaseTarget(flow)
        flow.state = .expired
        expiredFlows += 1
        // Forgotten flows cannot pile up: each is held at most one more idle timeout, and past
        // `maximumExpiredFlows` the newest are reset at once.
        flow.deadline = now + listeners[flow.listenerIndex].idleNanoseconds
        if expiredFlows > Self.maximumExpiredFlows { resetExpired(flow) }
    }

    func expiredFlowEvent(_ flow: Flow, fromClient: Bool, events: UInt32) {
        guard events & (CLNB_EPOLLIN | CLNB_EPOLLRDHUP | CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0 else { return }
        groups[flow.groupIndex].metrics.tcpELBResetCount += 1
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

    func tick() {
        routeSources.removeAll(keepingCapacity: true)
        for (index, listener) in listeners.enumerated() where listener.pausedUntil != 0 && now >= listener.pausedUntil {
            listeners[index].pausedUntil = 0
            if listener.fd >= 0 {
                _ = clnb_epoll_ctl(
                    epoll, CLNB_EPOLL_CTL_ADD, listener.fd, Self.listenerEvents, token(.listener, index, 0))
            }
        }
        if loopIndex == 0 {
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
        }
        for flow in flows {
            switch flow.state {
            case .free:
                continue
            case .connecting:
                if now >= flow.deadline {
                    // AWS-NLB.md §5: no answer in time means a RST for the client.
                    finish(flow, .connectTimeout, resetClient: true, resetTarget: true, detail: nil)
                }
            case .established:
                if now &- flow.lastActivity >= listeners[flow.listenerIndex].idleNanoseconds { expire(flow) }
            case .expired:
                if now >= flow.deadline { resetExpired(flow) }
            }
        }
        if draining && now >= drainDeadline {
            for flow in flows where flow.state != .free {
                if flow.state == .expired {
                    resetExpired(flow)
                } else {
                    finish(flow, .shutdown, resetClient: true, resetTarget: true, detail: nil)
                }
            }
            finished = true
        }
        if !finished { _ = clnb_timerfd_arm(tickFD, Int64(tickNanoseconds)) }
    }

    /// Carries out what a target's change of state does to its flows, on every loop.
    func apply(_ effects: [LifecycleEffect], group: Int) {
        if !effects.isEmpty && !workers.isEmpty {
            // The other loops take the new target states first, so none picks the target again.
            shareGroups(wait: false) { $0.apply(effects, group: group) }
        }
        for effect in effects {
            switch effect {
            case .resetFlows(let target, let reason):
                for flow in flows
                where (flow.state == .connecting || flow.state == .established) && flow.groupIndex == group
                    && flow.targetIndex == target
                {
                    groups[group].metrics.tcpELBResetCount += 1
                    finish(flow, reason, resetClient: true, resetTarget: true, detail: nil)
                }
            }
        }
    }

    // MARK: Shutdown

    /// Stops accepting and drains this loop's flows; on loop 0, every loop's. Loop 0 closes every loop's
    /// listener sockets once the other loops have stopped waiting on theirs.
    func beginShutdown(reason: String) {
        guard !draining else { return }
        draining = true
        var retired: [Int32] = []
        for index in listeners.indices where listeners[index].fd >= 0 {
            if listeners[index].pausedUntil == 0 {
                _ = clnb_epoll_ctl(epoll, CLNB_EPOLL_CTL_DEL, listeners[index].fd, 0, 0)
            }
            retired += listeners[index].loopFDs
            listeners[index].fd = -1
        }
        drainDeadline = now + UInt64(max(0, options.drainSeconds) * 1e9)
        if loopIndex == 0 {
            var total = liveFlows
            for worker in workers {
                total += perform(on: worker) {
                    $0.beginShutdown(reason: reason)
                    return $0.liveFlows
                }
            }
            for fd in retired { closeDescriptor(fd) }
            if total > 0 {
                options.log("\(reason): stopped accepting; draining \(total) flows for up to \(options.drainSeconds) s")
            }
        }
        if liveFlows == 0 {
            finished = true
        } else {
            tickNanoseconds = min(tickNanoseconds, 50_000_000)
        }
    }
}

extension IOResult {
    var isDone: Bool {
        if case .done = self { return true }
        return false
    }
}

extension IPAddress {
    var isUnspecifiedAddress: Bool {
        switch self {
        case .v4(let a): return a.isUnspecified
        case .v6(let a): return a.isUnspecified
        }
    }
}
