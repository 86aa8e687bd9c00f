import EventLoop
import CEpoll
import Glibc
import Synchronization
import Testing

/// Counts what an actor on the loop saw; checked through the actor's own isolation.
private actor LoopActor {
    let loop: EventLoop
    var reads: [UInt64] = []
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    init(loop: EventLoop) { self.loop = loop }

    func record(_ value: UInt64) { reads.append(value) }
    func onLoop() -> Bool { loop.inLoop }
}

/// Drains an eventfd and hands the count to the actor, entering it with `assumeIsolated`.
private final class EventFDReader: ReadinessHandler {
    let fd: Int32
    let owner: LoopActor
    init(fd: Int32, owner: LoopActor) { self.fd = fd; self.owner = owner }

    func ready(_ readiness: Readiness) {
        var value: UInt64 = 0
        guard Glibc.read(fd, &value, 8) == 8 else { return }
        owner.assumeIsolated { $0.record(value) }
    }
}

/// Counts wakeups: a handler epoll keeps calling would count thousands.
private final class WakeCounter: ReadinessHandler, Sendable {
    let count = Mutex(0)
    func ready(_ readiness: Readiness) { count.withLock { $0 += 1 } }
}

@Suite struct EventLoopTests {
    let loop = EventLoopGroup.shared.next()

    @Test func actorJobsRunOnTheLoop() async {
        let owner = LoopActor(loop: loop)
        #expect(await owner.onLoop())
        #expect(!loop.inLoop)
    }

    @Test func handlersEnterTheirActorWithoutAHop() async throws {
        let owner = LoopActor(loop: loop)
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        defer { close(fd) }
        let registration = loop.runAndWait { [loop] in
            try! loop.register(fd, interest: .read, handler: EventFDReader(fd: fd, owner: owner))
        }
        var seven: UInt64 = 7
        _ = write(fd, &seven, 8)
        while await owner.reads.isEmpty { await Task.yield() }
        #expect(await owner.reads == [7])
        loop.runAndWait { [loop] in loop.deregister(registration) }
    }

    @Test func timersFireInOrderOnTheLoop() {
        let fired = Mutex<[Int]>([])
        let done = loop.runAndWait { [loop] () -> Bool in
            loop.schedule(afterMilliseconds: 20) { fired.withLock { $0.append(2) } }
            loop.schedule(afterMilliseconds: 5) { fired.withLock { $0.append(1) } }
            let cancelled = loop.schedule(afterMilliseconds: 10) { fired.withLock { $0.append(99) } }
            loop.cancel(cancelled)
            return true
        }
        #expect(done)
        let start = MonotonicClock.milliseconds()
        while fired.withLock({ $0.count }) < 2 && MonotonicClock.milliseconds() - start < 5000 { usleep(1000) }
        let order = fired.withLock { $0 }
        #expect(order == [1, 2])
    }

    @Test func anEmptyInterestStopsHangupReports() throws {
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair) == 0)
        defer { close(pair[0]) }
        let counter = WakeCounter()
        let registration = loop.runAndWait { [loop, pair] in
            try! loop.register(pair[0], interest: .read, handler: counter)
        }
        close(pair[1])  // hangup: level-triggered, reported on every wait while watched
        let start = MonotonicClock.milliseconds()
        while counter.count.withLock({ $0 }) == 0 && MonotonicClock.milliseconds() - start < 5000 { usleep(1000) }
        loop.runAndWait { [loop] in try! loop.setInterest([], for: registration) }
        let paused = counter.count.withLock { $0 }
        usleep(50_000)
        let after = counter.count.withLock { $0 }
        #expect(after == paused)
        loop.runAndWait { [loop] in loop.deregister(registration) }
    }

    @Test func aSeparateLoopShutsDownAfterItsWork() {
        let group = EventLoopGroup(loopCount: 2, name: "test")
        let ran = Mutex(0)
        for loop in group.loops { loop.execute { ran.withLock { $0 += 1 } } }
        group.shutdown()
        let count = ran.withLock { $0 }
        #expect(count == 2)
    }
}
