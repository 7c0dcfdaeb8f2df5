import LocalNLBModel

/// A loop's TCP flow timers: a binary min-heap of (deadline, flow slot), one entry per flow that
/// waits on a time (a connect timeout, an idle checkpoint, an idle timeout), each slot's place in the
/// heap kept beside it so that an ended flow's entry leaves at once. The loop wakes for the earliest
/// deadline, not to scan every flow: an idle timeout fires on time, and quiet flows cost nothing.
/// Allocation-free once the arrays have reached the loop's peak of flows.
package struct FlowTimers {
    package struct Entry {
        package var deadline: UInt64
        package var slot: Int32
    }

    package private(set) var heap: [Entry] = []
    /// Each flow slot's index in `heap`, or -1.
    private var position: [Int32] = []

    package init() {
        heap.reserveCapacity(1024)
        position.reserveCapacity(1024)
    }

    package var earliest: UInt64? { heap.first?.deadline }

    /// Sets (or moves) the flow in `slot`'s timer to `deadline`.
    package mutating func schedule(_ slot: Int, at deadline: UInt64) {
        while position.count <= slot { position.append(-1) }
        let at = Int(position[slot])
        if at >= 0 {
            let earlier = deadline < heap[at].deadline
            heap[at].deadline = deadline
            if earlier { siftUp(at) } else { siftDown(at) }
        } else {
            heap.append(Entry(deadline: deadline, slot: Int32(slot)))
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
    package mutating func popDue(now: UInt64) -> Int? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        let slot = Int(first.slot)
        cancel(slot)
        return slot
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { return }
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
            let smaller = right < heap.count && heap[right].deadline < heap[left].deadline ? right : left
            guard heap[smaller].deadline < heap[parent].deadline else { return }
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
