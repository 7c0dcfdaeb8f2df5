import CLocalNLB
import Glibc
import LocalNLBModel

/// One epoll instance and its periodic tick timer, with the event arrays `wait` fills. Owned by one
/// thread (a loop, or the control plane); closing is `close()`'s job, called once by that owner.
package struct Poller {
    package let epoll: Int32
    package let tick: Int32
    static let capacity = 256
    package let events: UnsafeMutablePointer<UInt32>
    package let datas: UnsafeMutablePointer<UInt64>

    /// Descriptors only: made on any thread, used on the one that runs it.
    package struct Descriptors: Sendable {
        package let epoll: Int32
        package let tick: Int32

        package static func make() throws(SystemError) -> Descriptors {
            let epoll = try syscallNonBlocking("epoll_create1") { clnb_epoll_create() }
            DescriptorLedger.opened(epoll)
            do {
                let tick = try syscallNonBlocking("timerfd_create") { clnb_timerfd_create() }
                DescriptorLedger.opened(tick)
                return Descriptors(epoll: epoll, tick: tick)
            } catch {
                closeDescriptor(epoll)
                throw error
            }
        }

        package func close() {
            closeDescriptor(tick)
            closeDescriptor(epoll)
        }
    }

    package init(_ descriptors: Descriptors) {
        epoll = descriptors.epoll
        tick = descriptors.tick
        events = .allocate(capacity: Self.capacity)
        datas = .allocate(capacity: Self.capacity)
    }

    package func close() {
        Descriptors(epoll: epoll, tick: tick).close()
        events.deallocate()
        datas.deallocate()
    }

    package func add(_ fd: Int32, events: UInt32, token: UInt64) throws(SystemError) {
        try syscallNonBlocking("epoll_ctl") { clnb_epoll_ctl(epoll, CLNB_EPOLL_CTL_ADD, fd, events, token) }
    }

    /// Stops waiting on `fd`. Failing is harmless here: the descriptor was never added, or is closed.
    package func remove(_ fd: Int32) {
        _ = clnb_epoll_ctl(epoll, CLNB_EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits for events (forever with -1); the count of `events`/`datas` filled, 0 when interrupted.
    package func wait(timeoutMilliseconds: Int32 = -1) throws(SystemError) -> Int {
        let count = clnb_epoll_wait(epoll, events, datas, Int32(Self.capacity), timeoutMilliseconds)
        if count < 0 {
            if errno == EINTR { return 0 }
            throw SystemError(call: "epoll_wait", errno: .current)
        }
        return Int(count)
    }

    /// The tick fires once after `nanoseconds` (re-armed by whoever handles it).
    package func armTick(_ nanoseconds: UInt64) {
        _ = clnb_timerfd_arm(tick, Int64(nanoseconds))
    }

    package func readTick() {
        var expirations: UInt64 = 0
        _ = Glibc.read(tick, &expirations, 8)
    }
}

/// Epoll user data: kind (8 bits) | generation (24 bits) | index (32 bits), so an event for a
/// descriptor that was closed and reused is recognised and dropped.
package enum EventToken {
    package static func make(_ kind: UInt8, _ index: Int, _ generation: UInt32) -> UInt64 {
        UInt64(kind) << 56 | UInt64(generation & 0xFF_FFFF) << 32 | UInt64(UInt32(index))
    }
    package static func kind(_ token: UInt64) -> UInt8 { UInt8(token >> 56) }
    package static func index(_ token: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: token)) }
    package static func generation(_ token: UInt64) -> UInt32 { UInt32((token >> 32) & 0xFF_FFFF) }
}

/// A non-blocking eventfd: one thread rings it, the owner of an epoll waits on it. Whoever holds the
/// object may ring it; the descriptor is closed only when the last holder lets go, so a ring can never
/// land on a descriptor number that was closed and handed to a socket or pipe since.
package final class EventFD: Sendable {
    package let fd: Int32

    package init() throws(SystemError) {
        fd = try syscallNonBlocking("eventfd") { clnb_eventfd() }
        DescriptorLedger.opened(fd)
    }

    deinit { closeDescriptor(fd) }

    package func ring() {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }

    /// Reads the count, so the next ring is a new edge.
    package func drain() {
        var value: UInt64 = 0
        _ = Glibc.read(fd, &value, 8)
    }
}

/// A thread running `body`. The closure is `@Sendable`: all it shares with the starting thread is
/// safe to share, which is what makes handing it through pthread's `void *` sound.
package func startThread(_ body: @escaping @Sendable () -> Void) throws(SystemError) -> pthread_t {
    final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    var thread = pthread_t()
    // Escape 1 of 2 (see README, Architecture): pthread takes a raw pointer; the retained box is
    // taken back exactly once, by the thread or below when it could not start.
    let raw = Unmanaged.passRetained(Body(body)).toOpaque()
    let status = pthread_create(
        &thread, nil,
        { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, raw)
    guard status == 0 else {
        Unmanaged<Body>.fromOpaque(raw).release()
        throw SystemError(call: "pthread_create", errno: Errno(status))
    }
    return thread
}

/// CPU affinity for the event loops: one loop per CPU, as `LoadBalancerOptions.pinsLoops` asks.
package enum CPUAffinity {
    /// The CPUs this process may run on (all online CPUs, or what `taskset` left it), lowest first.
    package static func allowedCPUs() -> [Int32] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = clnb_allowed_cpus(&cpus, Int32(cpus.count))
        return count > 0 ? Array(cpus[0..<Int(count)]) : []
    }

    /// Keeps the calling thread on `cpu`; the error number when the kernel refuses.
    package static func pinThisThread(to cpu: Int32) -> Errno? {
        let status = clnb_pin_thread(cpu)
        return status == 0 ? nil : Errno(status)
    }
}

/// The `target` command's process: line-buffered reports, and a main thread that waits for SIGTERM or
/// SIGINT while the server's threads (started after `blockTermination`) never see them.
public enum ProcessSignals {
    public static func lineBufferStandardOutput() { clnb_stdout_line_buffered() }
    public static func blockTermination() { clnb_block_termination() }
    /// Waits for SIGTERM or SIGINT; returns which.
    public static func waitForTermination() -> Int32 { clnb_wait_termination() }
}
