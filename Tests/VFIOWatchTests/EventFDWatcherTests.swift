import EventLoop
import Glibc
import Testing
import VFIOWatch

/// Makes a watcher on `loop` (watchers are loop-confined) and hands it back bound to it.
func watcherOnLoop(
    _ loop: EventLoop, fd: Int32, onCancel: (@Sendable () -> Void)? = nil,
    handler: @escaping @Sendable (UInt64) -> Void
) throws(EventFDError) -> LoopBound<EventFDWatcher> {
    try loop.runAndWait { () throws(EventFDError) in
        LoopBound(try EventFDWatcher(fd: fd, loop: loop, onCancel: onCancel, handler: handler), loop: loop)
    }
}

@Suite struct EventFDWatcherTests {
    let loop = EventLoopGroup.shared.next()

    @Test func signalsBeforeStartArriveCoalescedThenEachWakeupReports() throws {
        let fd = try EventFD.makeEventFD()
        let counts = Mailbox<UInt64>()
        let loop = self.loop
        let watcher = try watcherOnLoop(loop, fd: fd) { count in
            loop.assertInLoop()
            counts.post(count)
        }
        defer { loop.runAndWait { watcher.value.cancel() } }

        for _ in 0..<50 { try EventFD.signal(fd) }
        loop.runAndWait { watcher.value.start() }
        #expect(counts.next() == 50)

        try EventFD.signal(fd, adding: 3)
        #expect(counts.next() == 3)
        // Nothing else came: the loop has handled everything epoll reported.
        loop.runAndWait {}
        #expect(counts.pending.isEmpty)
    }

    @Test func cancelClosesTheFDOnTheLoopThenCallsOnCancel() throws {
        let fd = try parkedAtHighNumber(EventFD.makeEventFD(), slot: 2)
        let closed = Mailbox<Bool>()
        let loop = self.loop
        let watcher = try watcherOnLoop(loop, fd: fd, onCancel: {
            loop.assertInLoop()
            closed.post(!isOpen(fd))
        }) { _ in }
        loop.runAndWait {
            watcher.value.start()
            watcher.value.cancel()
            watcher.value.cancel()  // Idempotent.
        }
        #expect(closed.next() == true)
        #expect(closed.pending.isEmpty)
    }

    @Test func cancelWithoutStartStillCloses() throws {
        let fd = try parkedAtHighNumber(EventFD.makeEventFD(), slot: 3)
        let closed = Mailbox<Bool>()
        let watcher = try watcherOnLoop(loop, fd: fd, onCancel: { closed.post(!isOpen(fd)) }) { _ in
            Issue.record("no signal was sent")
        }
        loop.runAndWait { watcher.value.cancel() }
        #expect(closed.next() == true)
    }

    @Test func aPipeIsRefusedAndStaysTheCallers() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        #expect(throws: EventFDError.notAnEventFD(fd: ends[0])) {
            _ = try watcherOnLoop(loop, fd: ends[0]) { _ in }
        }
        #expect(isOpen(ends[0]))
    }

    @Test func theWatcherMakesABlockingEventFDNonBlocking() throws {
        let fd = try EventFD.makeEventFD()
        try #require(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
        let counts = Mailbox<UInt64>()
        let watcher = try watcherOnLoop(loop, fd: fd) { counts.post($0) }
        defer { loop.runAndWait { watcher.value.cancel() } }
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
        loop.runAndWait { watcher.value.start() }
        try EventFD.signal(fd)
        #expect(counts.next() == 1)
    }
}
