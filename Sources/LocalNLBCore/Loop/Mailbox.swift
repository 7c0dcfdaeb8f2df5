import CLocalNLB
import Glibc
import Synchronization

/// What reaches an event loop from the control plane: jobs run on the loop's thread, in order.
struct Mailbox {
    enum State {
        /// The loop's thread has not taken its first snapshot yet: jobs wait for it.
        case waiting
        case running
        /// The loop ended: nothing runs on it any more, so new jobs are dropped.
        case ended
    }
    var jobs: [@Sendable (EventLoop) -> Void] = []
    var state = State.waiting
}

/// The control plane's side of one event loop: the mailbox and the eventfd that rings it. The loop
/// itself (`EventLoop`) lives on its own thread and is nobody else's.
///
/// Shutdown order: the loop marks its mailbox ended (running what is queued) before it closes any of
/// its descriptors, and the eventfd lives as long as this handle, which every sender holds. A post
/// racing the loop's end therefore either runs, or is dropped, and rings a descriptor still its own.
final class LoopHandle: Sendable {
    let index: Int
    let wake: EventFD
    private let mailbox = Mutex(Mailbox())
    /// The loop's thread rings this when it ends (the control plane waits on it).
    let controlWake: EventFD

    init(index: Int, controlWake: EventFD) throws(SystemError) {
        self.index = index
        self.controlWake = controlWake
        wake = try EventFD()
    }

    var hasEnded: Bool { mailbox.withLock { $0.state == .ended } }

    /// Queues `job` for the loop's thread; false when the loop has ended and will never run it.
    @discardableResult
    func post(_ job: @escaping @Sendable (EventLoop) -> Void) -> Bool {
        let queued = mailbox.withLock { box -> Bool in
            guard box.state != .ended else { return false }
            box.jobs.append(job)
            return true
        }
        if queued { wake.ring() }
        return queued
    }

    /// Runs `body` on the loop's thread and waits for its answer; nil when the loop has ended. The
    /// control plane only: no loop ever waits for the control plane, so this cannot deadlock.
    func perform<Value: Sendable>(_ body: @escaping @Sendable (EventLoop) -> Value) -> Value? {
        let reply = Mutex<Value?>(nil)
        let answered = Atomic<Bool>(false)
        let done = clnb_eventfd_blocking()
        let queued = post { loop in
            let value = body(loop)
            reply.withLock { $0 = value }
            answered.store(true, ordering: .releasing)
            if done >= 0 {
                var one: UInt64 = 1
                _ = Glibc.write(done, &one, 8)
            }
        }
        guard queued else {
            if done >= 0 { closeDescriptor(done) }
            return nil
        }
        if done >= 0 {
            var count: UInt64 = 0
            while Glibc.read(done, &count, 8) < 0 && errno == EINTR {}
            closeDescriptor(done)
        }
        // Without an eventfd (out of descriptors), wait by polling.
        while !answered.load(ordering: .acquiring) { usleep(100) }
        return reply.withLock { $0 }
    }

    // MARK: The loop's side

    /// The jobs waiting, taken by the loop's thread; `start` marks the mailbox running.
    func takeJobs(starting: Bool = false) -> [@Sendable (EventLoop) -> Void] {
        mailbox.withLock { box in
            if starting { box.state = .running }
            defer { box.jobs = [] }
            return box.jobs
        }
    }

    /// The loop ends: later posts are dropped; the jobs still queued are returned to be run now,
    /// before the loop closes a descriptor.
    func end() -> [@Sendable (EventLoop) -> Void] {
        mailbox.withLock { box in
            box.state = .ended
            defer { box.jobs = [] }
            return box.jobs
        }
    }
}
