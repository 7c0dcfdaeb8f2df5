import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The loop's timer heap against a plain model: whatever is scheduled, moved and cancelled, the due
/// flows come out in deadline order, each once, and a cancelled one never.
@Suite struct FlowTimerHeap {
    @Test func dueFlowsComeOutInOrderOnceAndCancelledOnesNever() {
        var timers = FlowTimers()
        var model: [Int: UInt64] = [:]
        var generator = SeededNumbers(seed: 17)
        for _ in 0..<20_000 {
            let slot = Int(generator.next() % 300)
            switch generator.next() % 4 {
            case 0, 1:
                let deadline = generator.next() % 10_000 * 1_000_000
                timers.schedule(slot, at: deadline)
                model[slot] = deadline
            case 2:
                timers.cancel(slot)
                model[slot] = nil
            default:
                let now = generator.next() % 10_000 * 1_000_000 + generator.next() % 1_000_000
                var popped: [(Int, UInt64)] = []
                while let due = timers.popDue(now: now) { popped.append((due, model[due] ?? .max)) }
                let expected = model.filter { $0.value <= now }
                #expect(Set(popped.map(\.0)) == Set(expected.keys))
                #expect(popped.count == expected.count)
                #expect(popped.map(\.1) == popped.map(\.1).sorted())
                for (slot, _) in popped { model[slot] = nil }
            }
            #expect(timers.earliest(now: 0) == model.values.min())
        }
    }

    @Test func movingATimerLaterOrEarlierKeepsOneEntry() {
        var timers = FlowTimers()
        let ms: UInt64 = 1_000_000
        timers.schedule(3, at: 50 * ms)
        timers.schedule(4, at: 40 * ms)
        timers.schedule(3, at: 10 * ms)
        #expect(timers.heap.count == 2 && timers.earliest(now: 0) == 10 * ms)
        timers.schedule(3, at: 90 * ms)
        #expect(timers.popDue(now: 60 * ms) == 4)
        #expect(timers.popDue(now: 60 * ms) == nil)
        #expect(timers.popDue(now: 90 * ms) == 3)
        #expect(timers.heap.isEmpty)
    }

    @Test func aDeadlineIsNeverEarlyAndTheOrderHoldsWhereMillisecondsWrap() {
        var timers = FlowTimers()
        let ms: UInt64 = 1_000_000
        // Half a millisecond past a whole one rounds up: not due before the deadline itself.
        timers.schedule(1, at: 7 * ms + ms / 2)
        #expect(timers.popDue(now: 7 * ms + ms / 2 - 1) == nil)
        #expect(timers.popDue(now: 8 * ms) == 1)
        // Around 2^32 ms of the loop's clock (49.7 days) the 32-bit milliseconds wrap; order holds.
        let wrap = UInt64(UInt32.max) * ms
        timers.schedule(5, at: wrap + 3 * ms)  // after the wrap
        timers.schedule(6, at: wrap - 2 * ms)  // before it
        #expect(timers.earliest(now: wrap - 10 * ms) == wrap - 2 * ms)
        #expect(timers.popDue(now: wrap - 3 * ms) == nil)
        #expect(timers.popDue(now: wrap) == 6)
        #expect(timers.popDue(now: wrap + 2 * ms) == nil)
        #expect(timers.earliest(now: wrap + 2 * ms) == wrap + 3 * ms)
        #expect(timers.popDue(now: wrap + 3 * ms) == 5)
    }
}

/// A deterministic generator (Knuth's MMIX linear congruential constants, high bits kept), so a
/// failure repeats.
struct SeededNumbers {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 17
    }
}
