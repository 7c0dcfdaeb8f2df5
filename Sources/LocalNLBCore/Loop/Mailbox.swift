import CLocalNLB
import Glibc
import Synchronization

/// Work sent to a loop from loop 0. While the loop runs, jobs wait here and run on its thread, in
/// order; while it does not (before `run()`, after it), a job runs at once, under the lock, on the
/// sender's thread: the loop's state is then nobody else's.
struct Mailbox {
    var jobs: [(LoadBalancer) -> Void] = []
    var open = false
}

/// The answer of a job run on another loop.
final class LoopReply<Value>: @unchecked Sendable {
    var value: Value?
    let ready = Atomic<Bool>(false)
}

extension LoadBalancer {
    /// Loop `index` of loop 0's balancer: the same configuration, targets and listener sockets, its own
    /// epoll, flows, pipes and counters.
    convenience init(workerOf primary: LoadBalancer, index: Int) throws {
        try self.init(
            loop: index, configuration: primary.configuration, options: primary.options,
            groups: primary.groups.map {
                var group = $0
                group.metrics = GroupMetrics()
                return group
            }, loopCount: primary.loopCount)
        adoptListeners(primary.listeners)
    }

    // MARK: Threads

    /// Starts every other loop on a thread of its own (loop 0 only; others return nothing). If a
    /// thread cannot be made, the loops started are stopped and joined, and the error says what to do:
    /// the kernel would keep handing that loop's sockets clients that nobody accepts.
    func startWorkers() throws -> [pthread_t] {
        var threads: [pthread_t] = []
        for worker in workers {
            var thread = pthread_t()
            let retained = Unmanaged.passRetained(worker).toOpaque()
            let status = pthread_create(
                &thread, nil,
                { raw in
                    let loop = Unmanaged<LoadBalancer>.fromOpaque(raw!).takeRetainedValue()
                    loop.openMailbox()
                    do { try loop.run() } catch { loop.options.log("event loop \(loop.loopIndex): \(error)") }
                    loop.closeMailbox()
                    return nil
                }, retained)
            guard status == 0 else {
                Unmanaged<LoadBalancer>.fromOpaque(retained).release()
                for started in workers.prefix(threads.count) {
                    started.post { $0.beginShutdown(reason: "event loop \(worker.loopIndex) not started") }
                }
                for thread in threads { pthread_join(thread, nil) }
                throw ListenerError(
                    description:
                        "cannot start event loop \(worker.loopIndex) (pthread_create: \(Errno(status))); "
                        + "run with fewer --event-loops")
            }
            threads.append(thread)
        }
        return threads
    }

    /// Waits for the other loops to drain and end (asking them to, if loop 0 ended without draining).
    func stopWorkers(_ threads: [pthread_t]) {
        if !draining {
            for worker in workers { worker.post { $0.beginShutdown(reason: "loop 0 ended") } }
        }
        for thread in threads { pthread_join(thread, nil) }
    }

    // MARK: Mailbox

    func openMailbox() {
        mailbox.withLock { $0.open = true }
    }

    /// The loop no longer runs: jobs left are run now, and later ones at once by their senders.
    func closeMailbox() {
        mailbox.withLock { box in
            box.open = false
            for job in box.jobs { job(self) }
            box.jobs = []
        }
    }

    /// Runs `job` on this loop's thread soon, after the jobs sent before it.
    func post(_ job: @escaping (LoadBalancer) -> Void) {
        let queued = mailbox.withLock { box -> Bool in
            guard box.open else {
                job(self)
                return false
            }
            box.jobs.append(job)
            return true
        }
        if queued {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// The wake-up eventfd of a loop other than 0: jobs are waiting.
    func runMailbox() {
        var jobs: [(LoadBalancer) -> Void] = []
        mailbox.withLock { swap(&jobs, &$0.jobs) }
        for job in jobs { job(self) }
    }

    /// Runs `body` on `worker`'s thread and waits for its answer. Loop 0 only: no other loop ever
    /// waits for loop 0, so this cannot deadlock.
    func perform<Value>(on worker: LoadBalancer, _ body: @escaping (LoadBalancer) -> Value) -> Value {
        let reply = LoopReply<Value>()
        let done = clnb_eventfd_blocking()
        worker.post { loop in
            reply.value = body(loop)
            reply.ready.store(true, ordering: .releasing)
            if done >= 0 {
                var one: UInt64 = 1
                _ = Glibc.write(done, &one, 8)
            }
        }
        if done >= 0 {
            var count: UInt64 = 0
            while Glibc.read(done, &count, 8) < 0 && errno == EINTR {}
            closeDescriptor(done)
        }
        // Without an eventfd (out of descriptors), wait by polling.
        while !reply.ready.load(ordering: .acquiring) { usleep(100) }
        return reply.value!
    }

    // MARK: Sharing state

    /// Sends the other loops loop 0's configuration and target groups, then runs `then` on each. With
    /// `wait` (API changes, reloads), every loop has them before this returns; otherwise (timers,
    /// health checks) they follow through the mailboxes.
    func shareGroups(wait: Bool, then: ((LoadBalancer) -> Void)? = nil) {
        publishedFingerprint = routingFingerprint()
        let (configuration, groups, tick) = (configuration, groups, tickNanoseconds)
        for worker in workers {
            let job = { (loop: LoadBalancer) in
                loop.adopt(configuration: configuration, groups: groups, tickNanoseconds: tick)
                then?(loop)
            }
            if wait { perform(on: worker, job) } else { worker.post(job) }
        }
    }

    /// What the other loops route by: every target's state and whether it takes new flows, and each
    /// group's fail-open. Timers and health checks change it now and then; the loop compares it after
    /// them, without allocating, and sends the groups only when it moved.
    func routingFingerprint() -> Int {
        var hasher = Hasher()
        for group in groups {
            hasher.combine(group.lifecycle.failingOpen)
            hasher.combine(group.targets.count)
            for target in group.targets {
                hasher.combine(target.registration)
                hasher.combine(target.state)
                hasher.combine(target.takesNewFlows)
            }
        }
        return hasher.finalize()
    }

    /// Takes loop 0's configuration and groups, keeping this loop's own counters.
    func adopt(configuration: Configuration, groups snapshot: [TargetGroup], tickNanoseconds tick: UInt64) {
        var adopted = snapshot
        for index in adopted.indices {
            guard index < groups.count else {
                adopted[index].metrics = GroupMetrics()
                continue
            }
            adopted[index].metrics = groups[index].metrics
        }
        groups = adopted
        self.configuration = configuration
        if !draining { tickNanoseconds = tick }
    }

    /// Takes loop 0's listener sockets (same indices): waits on new ones, stops waiting on those gone,
    /// before loop 0 closes them.
    func adoptListeners(_ shared: [Listener]) {
        for index in shared.indices {
            let old = index < listeners.count ? listeners[index] : nil
            var listener = shared[index]
            // This loop's own socket of the endpoint's group.
            listener.fd = draining || listener.fd < 0 ? -1 : listener.loopFDs[loopIndex]
            listener.pausedUntil = 0
            if let old, old.fd >= 0 {
                if old.fd == listener.fd {
                    listener.pausedUntil = old.pausedUntil
                } else if old.pausedUntil == 0 {
                    _ = clnb_epoll_ctl(epoll, CLNB_EPOLL_CTL_DEL, old.fd, 0, 0)
                }
            }
            if listener.fd >= 0 && listener.fd != old?.fd {
                _ = clnb_epoll_ctl(
                    epoll, CLNB_EPOLL_CTL_ADD, listener.fd, Self.listenerEvents, token(.listener, index, 0))
            }
            if index < listeners.count {
                listeners[index] = listener
            } else {
                listeners.append(listener)
            }
        }
    }

    /// Every group's counters summed over the loops (loop 0 only).
    func metricsOfAllLoops() -> [GroupMetrics] {
        var total = groups.map(\.metrics)
        for worker in workers {
            let theirs = perform(on: worker) { $0.groups.map(\.metrics) }
            for index in theirs.indices where index < total.count { total[index].add(theirs[index]) }
        }
        return total
    }
}

extension GroupMetrics {
    mutating func add(_ other: GroupMetrics) {
        newFlowCount += other.newFlowCount
        processedBytes &+= other.processedBytes
        tcpClientResetCount += other.tcpClientResetCount
        tcpTargetResetCount += other.tcpTargetResetCount
        tcpELBResetCount += other.tcpELBResetCount
        unhealthyRoutingFlowCount += other.unhealthyRoutingFlowCount
        portAllocationErrorCount += other.portAllocationErrorCount
    }
}
