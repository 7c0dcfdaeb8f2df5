import LocalNLBModel
import Synchronization

/// What reaches an event loop from the control plane: jobs run on the loop's thread, in order.
package struct Mailbox {
    package enum State {
        /// The loop's thread has not taken its first snapshot yet: jobs wait for it.
        case waiting
        case running
        /// The loop ended: nothing runs on it any more, so new jobs are dropped.
        case ended
    }
    package var jobs: [@Sendable (EventLoop) -> Void] = []
    package var state = State.waiting
}

/// The control plane's side of one event loop: the mailbox and the eventfd that rings it. The loop
/// itself (`EventLoop`) lives on its own thread and is nobody else's.
///
/// Shutdown order: the loop marks its mailbox ended (running what is queued) before it closes any of
/// its descriptors, and the eventfd lives as long as this handle, which every sender holds. A post
/// racing the loop's end therefore either runs, or is dropped, and rings a descriptor still its own.
package final class LoopHandle: Sendable {
    package let index: Int
    package let wake: EventFD
    private let mailbox = Mutex(Mailbox())
    /// The loop's thread rings this when it ends (the control plane waits on it).
    package let controlWake: EventFD
    /// Flows the loop reset because the shutdown's drain time ran out (or a second signal cut it short):
    /// read by the control plane once the loop has ended, for the last line of the log.
    package let resetAtShutdown = Atomic<Int>(0)

    package init(index: Int, controlWake: EventFD) throws(SystemError) {
        self.index = index
        self.controlWake = controlWake
        wake = try EventFD()
    }

    package var hasEnded: Bool { mailbox.withLock { $0.state == .ended } }

    /// Queues `job` for the loop's thread; false when the loop has ended and will never run it.
    @discardableResult
    package func post(_ job: @escaping @Sendable (EventLoop) -> Void) -> Bool {
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
    package func perform<Value: Sendable>(_ body: @escaping @Sendable (EventLoop) -> Value) -> Value? {
        let reply = LoopReply<Value>()
        let queued = post { loop in
            let value = body(loop)
            reply.value.withLock { $0 = value }
            reply.answered.store(true, ordering: .releasing)
            reply.done.ring()
        }
        guard queued else { return nil }
        reply.done.wait { reply.answered.load(ordering: .acquiring) }
        return reply.value.withLock { $0 }
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
    package func end() -> [@Sendable (EventLoop) -> Void] {
        mailbox.withLock { box in
            box.state = .ended
            defer { box.jobs = [] }
            return box.jobs
        }
    }
}

/// The answer of a job `perform` sent: the value, whether it is there, and the signal it waits on.
package final class LoopReply<Value: Sendable>: Sendable {
    package let value = Mutex<Value?>(nil)
    package let answered = Atomic<Bool>(false)
    package let done = OneShotSignal()
}
