import Synchronization

/// In debug builds, every descriptor the system layer opened and has not closed. Each descriptor has
/// one owner, and closing it is that owner's job: `closeDescriptor` of one the ledger does not hold
/// (closed twice, or never opened here) traps at once with its number, before it can close a
/// descriptor that another owner got since. Release builds keep no ledger.
enum DescriptorLedger {
    #if DEBUG
        private static let open = Mutex<Set<Int32>>([])
    #endif

    /// `fd` was just opened (socket, accept, pipe, epoll, timerfd, eventfd, signalfd).
    @inline(__always)
    static func opened(_ fd: Int32) {
        #if DEBUG
            guard fd >= 0 else { return }
            open.withLock { _ = $0.insert(fd) }
        #endif
    }

    /// `fd` is about to be closed by its owner.
    @inline(__always)
    static func closing(_ fd: Int32) {
        #if DEBUG
            let held = open.withLock { $0.remove(fd) != nil }
            precondition(held, "close(\(fd)): a descriptor closed twice, or one nobody opened here")
        #endif
    }

    /// Whether `fd` is open by the ledger's account (debug builds; release builds always say true).
    static func isOpen(_ fd: Int32) -> Bool {
        #if DEBUG
            return open.withLock { $0.contains(fd) }
        #else
            return true
        #endif
    }
}
