import LocalNLBModel

/// A loop's flows, TCP and UDP, in the order of their ids (a loop hands out rising ids), so that
/// `GET /flows?Marker=ID` finds its page by binary search and reads only the page: O(log n + page),
/// however many flows the loop carries. An ended flow's entry stays until enough have ended that
/// one pass over the list removes them, in place (no allocation once the list has reached its size).
package struct FlowOrder {
    /// 16 bytes a flow: the slot as 32 bits (a loop never holds 4 billion flows).
    package struct Entry {
        package var id: UInt64
        var slotIndex: UInt32
        package var udp: Bool
        /// An application load balancer's client connection (an HTTP session's slot).
        package var http = false
        package var slot: Int { Int(slotIndex) }
    }

    package private(set) var entries: [Entry] = []
    /// Entries whose flow has ended.
    private var ended = 0

    /// A new flow; its id is above every id before it.
    package mutating func append(id: UInt64, slot: Int, udp: Bool, http: Bool = false) {
        entries.append(Entry(id: id, slotIndex: UInt32(truncatingIfNeeded: slot), udp: udp, http: http))
    }

    /// A flow ended. Once ended entries outnumber a quarter of the live ones (and 64), they are
    /// dropped in one pass: each flow's end pays for its own removal, on average.
    mutating func flowEnded(isLive: (Entry) -> Bool) {
        ended += 1
        guard ended > 64 && ended * 4 > entries.count - ended else { return }
        entries.removeAll { !isLive($0) }
        ended = 0
    }

    /// The position of the first entry with an id above `marker`.
    func firstPosition(after marker: UInt64) -> Int {
        var (low, high) = (0, entries.count)
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].id <= marker { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
