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
                let deadline = generator.next() % 10_000
                timers.schedule(slot, at: deadline)
                model[slot] = deadline
            case 2:
                timers.cancel(slot)
                model[slot] = nil
            default:
                let now = generator.next() % 10_000
                var popped: [(Int, UInt64)] = []
                while let due = timers.popDue(now: now) { popped.append((due, model[due] ?? .max)) }
                let expected = model.filter { $0.value <= now }
                #expect(Set(popped.map(\.0)) == Set(expected.keys))
                #expect(popped.count == expected.count)
                #expect(popped.map(\.1) == popped.map(\.1).sorted())
                for (slot, _) in popped { model[slot] = nil }
            }
            #expect(timers.earliest == model.values.min())
        }
    }

    @Test func movingATimerLaterOrEarlierKeepsOneEntry() {
        var timers = FlowTimers()
        timers.schedule(3, at: 50)
        timers.schedule(4, at: 40)
        timers.schedule(3, at: 10)
        #expect(timers.heap.count == 2 && timers.earliest == 10)
        timers.schedule(3, at: 90)
        #expect(timers.popDue(now: 60) == 4)
        #expect(timers.popDue(now: 60) == nil)
        #expect(timers.popDue(now: 90) == 3)
        #expect(timers.heap.isEmpty)
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
