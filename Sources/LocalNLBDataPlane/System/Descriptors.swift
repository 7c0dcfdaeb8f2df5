import Glibc
import LocalNLBModel
import Synchronization

/// In debug builds, every descriptor the system layer opened and has not closed. Each descriptor has
/// one owner, and closing it is that owner's job: `closeDescriptor` of one the ledger does not hold
/// (closed twice, or never opened here) traps at once with its number, before it can close a
/// descriptor that another owner got since. Release builds keep no ledger.
package enum DescriptorLedger {
    #if DEBUG
        /// Each open descriptor and the thread that opened it.
        private static let open = Mutex<[Int32: UInt]>([:])

        /// A number for the calling thread that no other thread ever gets. (`pthread_self()` is not
        /// one: an ended thread's value is given to the next, which would inherit what the ended one
        /// left open on purpose, a test's server socket say, as its own leak.)
        private static var thread: UInt {
            if let value = pthread_getspecific(threadKey) { return UInt(bitPattern: value) }
            let number = nextThread.add(1, ordering: .relaxed).newValue
            pthread_setspecific(threadKey, UnsafeRawPointer(bitPattern: number))
            return number
        }
        private static let nextThread = Atomic<UInt>(0)
        private static let threadKey: pthread_key_t = {
            var key = pthread_key_t()
            pthread_key_create(&key, nil)
            return key
        }()
    #endif

    /// `fd` was just opened (socket, accept, pipe, epoll, timerfd, eventfd, signalfd).
    @inline(__always)
    package static func opened(_ fd: Int32) {
        #if DEBUG
            guard fd >= 0 else { return }
            let thread = Self.thread
            open.withLock { $0[fd] = thread }
        #endif
    }

    /// `fd` is about to be closed by its owner.
    @inline(__always)
    package static func closing(_ fd: Int32) {
        #if DEBUG
            let held = open.withLock { $0.removeValue(forKey: fd) != nil }
            precondition(held, "close(\(fd)): a descriptor closed twice, or one nobody opened here")
        #endif
    }

    /// Whether `fd` is open by the ledger's account (debug builds; release builds always say true).
    package static func isOpen(_ fd: Int32) -> Bool {
        #if DEBUG
            return open.withLock { $0[fd] != nil }
        #else
            return true
        #endif
    }

    /// A thread that owns all it opens (an event loop) calls this as it ends: a descriptor it opened
    /// and did not close is a leak, and traps with the descriptors' numbers.
    static func assertNoneOpenedByThisThread(_ owner: String) {
        #if DEBUG
            let thread = Self.thread
            let leaked = open.withLock { $0.filter { $0.value == thread }.keys.sorted() }
            precondition(leaked.isEmpty, "\(owner) ends with descriptors it opened still open: \(leaked)")
        #endif
    }
}
