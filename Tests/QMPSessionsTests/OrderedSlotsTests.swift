import QMPSessions
import Testing

/// A device's events: a forwarded error's waits for QEMU's answer, and what came after it
/// waits behind it.
@Suite struct OrderedSlotsTests {
    @Test func withNothingWaitingEventsGoAtOnce() {
        var queue = OrderedSlots<String>()
        #expect(queue.append("a") == ["a"])
        #expect(queue.append("b") == ["b"])
    }

    @Test func laterEventsWaitForAnEarlierForwardedError() {
        var queue = OrderedSlots<String>()
        let error = queue.reserve()
        #expect(queue.append("host recovery") == [])
        #expect(queue.fill(error, with: "error") == ["error", "host recovery"])
        #expect(queue.append("next") == ["next"])
    }

    @Test func answersOutOfOrderStillAnnounceInOrder() {
        var queue = OrderedSlots<String>()
        let first = queue.reserve()
        let second = queue.reserve()
        #expect(queue.fill(second, with: "second") == [])
        #expect(queue.fill(first, with: "first") == ["first", "second"])
    }
}
