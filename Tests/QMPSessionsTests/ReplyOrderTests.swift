@testable import QMPSessions
import Testing

@Suite struct ReplyOrderTests {
    @Test func repliesLeaveInCommandOrderWhoeverAnswersFirst() {
        var order = ReplyOrder()
        let forwarded = order.reserve()
        let local = order.reserve()
        let third = order.reserve()
        #expect(order.fill(local, with: [2]).isEmpty)
        #expect(order.fill(third, with: [3]).isEmpty)
        #expect(order.fill(forwarded, with: [1]) == [[1], [2], [3]])
        // Nothing is held back any more: the next reply goes straight out.
        let fourth = order.reserve()
        #expect(order.fill(fourth, with: [4]) == [[4]])
    }

    @Test func headOfLineGoesStraightOut() {
        var order = ReplyOrder()
        let first = order.reserve()
        #expect(order.fill(first, with: [7]) == [[7]])
        let second = order.reserve()
        #expect(order.fill(second, with: [8]) == [[8]])
    }
}
