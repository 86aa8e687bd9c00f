import Dispatch
import Glibc
import Testing
import VFIOWatch

@Suite struct EventFDWatcherTests {
    @Test func signalsBeforeStartArriveCoalescedThenEachWakeupReports() throws {
        let fd = try EventFD.makeEventFD()
        let queue = DispatchQueue(label: "test.eventfd-watcher")
        let counts = Mailbox<UInt64>()
        let watcher = try EventFDWatcher(fd: fd, queue: queue) { count in
            dispatchPrecondition(condition: .onQueue(queue))
            counts.post(count)
        }
        defer { watcher.cancel() }

        for _ in 0..<50 { try EventFD.signal(fd) }
        watcher.start()
        #expect(counts.next() == 50)

        try EventFD.signal(fd, adding: 3)
        #expect(counts.next() == 3)
        // Nothing else came: the queue has run everything the source had.
        queue.sync {}
        #expect(counts.pending.isEmpty)
    }

    @Test func cancelClosesTheFDOnTheQueueThenCallsOnCancel() throws {
        let fd = try parkedAtHighNumber(EventFD.makeEventFD(), slot: 2)
        let queue = DispatchQueue(label: "test.eventfd-watcher.cancel")
        let closed = Mailbox<Bool>()
        let watcher = try EventFDWatcher(fd: fd, queue: queue, onCancel: {
            dispatchPrecondition(condition: .onQueue(queue))
            closed.post(!isOpen(fd))
        }) { _ in }
        watcher.start()
        watcher.cancel()
        watcher.cancel()  // Idempotent.
        #expect(closed.next() == true)
        queue.sync {}
        #expect(closed.pending.isEmpty)
    }

    @Test func cancelWithoutStartStillCloses() throws {
        let fd = try parkedAtHighNumber(EventFD.makeEventFD(), slot: 3)
        let queue = DispatchQueue(label: "test.eventfd-watcher.unstarted")
        let closed = Mailbox<Bool>()
        let watcher = try EventFDWatcher(fd: fd, queue: queue, onCancel: { closed.post(!isOpen(fd)) }) { _ in
            Issue.record("no signal was sent")
        }
        watcher.cancel()
        #expect(closed.next() == true)
    }

    @Test func aPipeIsRefusedAndStaysTheCallers() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        #expect(throws: EventFDError.notAnEventFD(fd: ends[0])) {
            _ = try EventFDWatcher(fd: ends[0], queue: DispatchQueue(label: "test.pipe")) { _ in }
        }
        #expect(isOpen(ends[0]))
    }

    @Test func theWatcherMakesABlockingEventFDNonBlocking() throws {
        let fd = try EventFD.makeEventFD()
        try #require(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
        let counts = Mailbox<UInt64>()
        let watcher = try EventFDWatcher(fd: fd, queue: DispatchQueue(label: "test.blocking")) { counts.post($0) }
        defer { watcher.cancel() }
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
        watcher.start()
        try EventFD.signal(fd)
        #expect(counts.next() == 1)
    }
}
