import LocalNLBModel

/// A loop's TCP flow timers: a binary min-heap of (deadline, flow slot), one entry per flow that
/// waits on a time (a connect timeout, an idle checkpoint, an idle timeout), each slot's place in the
/// heap kept beside it so that an ended flow's entry leaves at once. The loop wakes for the earliest
/// deadline, not to scan every flow: an idle timeout fires on time, and quiet flows cost nothing.
/// Allocation-free once the arrays have reached the loop's peak of flows.
///
/// An entry is 8 bytes: its deadline in whole milliseconds of the loop's clock, rounded up (so no timer
/// fires early), kept in 32 bits. Every deadline waiting is within the longest timeout (6,000 s of
/// idle) of now, far inside the 24 days that 31 bits of milliseconds span, so two deadlines compare by
/// the sign of their wrapping difference, like TCP's sequence numbers.
package struct FlowTimers {
    package struct Entry {
        package var due: UInt32
        package var slot: Int32
    }

    /// `nanoseconds` in milliseconds, rounded up, wrapped to 32 bits.
    static func milliseconds(_ nanoseconds: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: nanoseconds / 1_000_000 &+ (nanoseconds % 1_000_000 == 0 ? 0 : 1))
    }

    /// Whether deadline `a` comes before `b`.
    @inline(__always) static func before(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) < 0 }

    private(set) var heap: [Entry] = []
    /// Each flow slot's index in `heap`, or -1.
    private var position: [Int32] = []

    package init() {
        heap.reserveCapacity(1024)
        position.reserveCapacity(1024)
    }

    /// The earliest deadline (in nanoseconds of the loop's clock, on a whole millisecond), given now.
    func earliest(now: UInt64) -> UInt64? {
        guard let first = heap.first else { return nil }
        let current = now / 1_000_000
        let ahead = Int64(Int32(bitPattern: first.due &- UInt32(truncatingIfNeeded: current)))
        return ahead <= 0 ? current &* 1_000_000 : (current &+ UInt64(ahead)) &* 1_000_000
    }

    /// Sets (or moves) the flow in `slot`'s timer to `deadline`.
    mutating func schedule(_ slot: Int, at deadline: UInt64) {
        while position.count <= slot { position.append(-1) }
        let at = Int(position[slot])
        let due = Self.milliseconds(deadline)
        if at >= 0 {
            let earlier = Self.before(due, heap[at].due)
            heap[at].due = due
            if earlier { siftUp(at) } else { siftDown(at) }
        } else {
            heap.append(Entry(due: due, slot: Int32(slot)))
            position[slot] = Int32(heap.count - 1)
            siftUp(heap.count - 1)
        }
    }

    /// The flow in `slot` waits on no time any more (it ended, or was forgotten).
    package mutating func cancel(_ slot: Int) {
        guard slot < position.count, position[slot] >= 0 else { return }
        let at = Int(position[slot])
        position[slot] = -1
        let last = heap.removeLast()
        guard at < heap.count else { return }
        heap[at] = last
        position[Int(last.slot)] = Int32(at)
        siftDown(at)
        siftUp(at)
    }

    /// The slot of a flow whose deadline has come, taken off the heap; nil when none is due.
    mutating func popDue(now: UInt64) -> Int? {
        // Due once its millisecond has fully begun: `due` was rounded up, so never before the deadline.
        guard let first = heap.first, !Self.before(UInt32(truncatingIfNeeded: now / 1_000_000), first.due)
        else { return nil }
        let slot = Int(first.slot)
        cancel(slot)
        return slot
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(heap[child].due, heap[parent].due) else { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            let right = left + 1
            let smaller = right < heap.count && Self.before(heap[right].due, heap[left].due) ? right : left
            guard Self.before(heap[smaller].due, heap[parent].due) else { return }
            swapAt(smaller, parent)
            parent = smaller
        }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        position[Int(heap[a].slot)] = Int32(a)
        position[Int(heap[b].slot)] = Int32(b)
    }
}
