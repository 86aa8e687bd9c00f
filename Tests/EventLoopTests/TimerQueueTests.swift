import EventLoop
import Testing

@Suite struct TimerQueueTests {
    @Test func popsInDeadlineOrderAndTiesInScheduleOrder() {
        var queue = TimerQueue<String>()
        _ = queue.schedule(at: 30, "c")
        _ = queue.schedule(at: 10, "a")
        _ = queue.schedule(at: 20, "b1")
        _ = queue.schedule(at: 20, "b2")
        #expect(queue.nextDeadline() == 10)
        var popped: [String] = []
        while let next = queue.popDue(now: 25) { popped.append(next) }
        #expect(popped == ["a", "b1", "b2"])
        #expect(queue.nextDeadline() == 30)
        #expect(queue.popDue(now: 29) == nil)
    }

    @Test func cancelledTimersNeverFire() {
        var queue = TimerQueue<Int>()
        let first = queue.schedule(at: 5, 1)
        _ = queue.schedule(at: 6, 2)
        let cancelled = queue.cancel(first)
        let cancelledAgain = queue.cancel(first)
        #expect(cancelled && !cancelledAgain)
        #expect(queue.nextDeadline() == 6)
        #expect(queue.popDue(now: 100) == 2)
        #expect(queue.popDue(now: 100) == nil)
        #expect(queue.count == 0)
    }

    @Test func manyRandomDeadlinesComeOutSorted() {
        var queue = TimerQueue<UInt64>()
        var generator = SystemRandomNumberGenerator()
        let deadlines = (0..<500).map { _ in UInt64.random(in: 0..<1000, using: &generator) }
        for deadline in deadlines { _ = queue.schedule(at: deadline, deadline) }
        var out: [UInt64] = []
        while let next = queue.popDue(now: .max) { out.append(next) }
        #expect(out == deadlines.sorted())
    }
}
