@testable import QMPBroker
import Testing

/// A forwarded error's event waits for QEMU's answer; what came after it waits behind it.
@Suite struct OrderedAnnouncementsTests {
    final class Log {
        var said: [String] = []
        func emit(_ text: String) -> () -> Void { { self.said.append(text) } }
    }

    @Test func withNothingWaitingEventsGoAtOnce() {
        var queue = OrderedAnnouncements()
        let log = Log()
        queue.append(log.emit("a")).forEach { $0() }
        queue.append(log.emit("b")).forEach { $0() }
        #expect(log.said == ["a", "b"])
    }

    @Test func laterEventsWaitForAnEarlierForwardedError() {
        var queue = OrderedAnnouncements()
        let log = Log()
        let error = queue.reserve()
        queue.append(log.emit("host recovery")).forEach { $0() }
        #expect(log.said == [])
        queue.fill(error, log.emit("error")).forEach { $0() }
        #expect(log.said == ["error", "host recovery"])
        queue.append(log.emit("next")).forEach { $0() }
        #expect(log.said == ["error", "host recovery", "next"])
    }

    @Test func answersOutOfOrderStillAnnounceInOrder() {
        var queue = OrderedAnnouncements()
        let log = Log()
        let first = queue.reserve()
        let second = queue.reserve()
        queue.fill(second, log.emit("second")).forEach { $0() }
        #expect(log.said == [])
        queue.fill(first, log.emit("first")).forEach { $0() }
        #expect(log.said == ["first", "second"])
    }
}
