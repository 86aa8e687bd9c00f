import CEpoll
import Glibc
import Synchronization

/// One thread running `epoll_wait`, calling descriptor handlers, timers and jobs inline.
///
/// It is the serial executor of the VM actors assigned to it: an actor job enqueued from any
/// thread runs here, and a handler that fires here enters its actor with `assumeIsolated`,
/// with no hop and no lock. Why our own loop: SwiftNIO cannot carry SCM_RIGHTS on stream
/// sockets (QMP's `getfd`), and a Dispatch source hops from its epoll thread to a worker on
/// every event.
///
/// Registration and timers are loop-confined: call them on the loop's thread only
/// (from a handler, a timer or an isolated actor method). `enqueue`, `execute` and
/// `shutdown` may be called from any thread.
///
/// `@unchecked Sendable`: the cross-thread state (`submissions`) is behind a Mutex; every
/// other mutable member is touched only on the loop's own thread, which each loop-confined
/// entry point checks with `assertInLoop()`.
package final class EventLoop: @unchecked Sendable {
    package let name: String
    let epollFD: Int32
    private let wakeFD: Int32
    private let submissions = Mutex(Submissions())
    private var thread = pthread_t()
    private var registrations = RegistrationTable()
    private var timers = TimerQueue<() -> Void>()
    /// Whether the thread has been told to finish (it runs what was submitted before).
    private var finished = false
    /// The loop's one inotify instance, made on first use. Loop-confined.
    package private(set) lazy var fileWatches = FileWatches(loop: self)

    private struct Submissions {
        var work: [Work] = []
        /// Set while a wakeup is on its way: later submitters skip the eventfd write.
        var wakePending = false
        var stopping = false
    }

    enum Work: Sendable {
        case job(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    /// The token epoll reports for the loop's own wakeup eventfd.
    static let wakeToken = UInt64.max

    package init(name: String) {
        self.name = name
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epollFD >= 0, "epoll_create1: errno \(errno)")
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(wakeFD >= 0, "eventfd: errno \(errno)")
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: Self.wakeToken))
        precondition(epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0, "epoll_ctl(wake): errno \(errno)")
        let unmanaged = Unmanaged.passRetained(self)
        let created = pthread_create(&thread, nil, { argument in
            let loop = Unmanaged<EventLoop>.fromOpaque(argument!).takeRetainedValue()
            loop.run()
            return nil
        }, unmanaged.toOpaque())
        precondition(created == 0, "pthread_create: \(created)")
    }

    deinit {
        _ = Glibc.close(wakeFD)
        _ = Glibc.close(epollFD)
    }

    /// Whether the caller runs on this loop's thread.
    package var inLoop: Bool {
        pthread_getspecific(Self.currentLoopKey) == Unmanaged.passUnretained(self).toOpaque()
    }

    package func assertInLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inLoop, "called off event loop \(name)", file: file, line: line)
    }

    /// Runs `body` on the loop, after what is already queued. From any thread.
    package func execute(_ body: @escaping @Sendable () -> Void) {
        submit(.closure(body))
    }

    /// Runs `body` on the loop and waits for its result, or rethrows what it threw: for
    /// setup and teardown called from outside (never on a hot path). On the loop's own
    /// thread it runs inline.
    package func runAndWait<Value: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> Value
    ) throws(Failure) -> Value {
        if inLoop { return try body() }
        let outcome = Mutex<Result<Value, Failure>?>(nil)
        let done = Semaphore()
        execute {
            let result = Result { () throws(Failure) in try body() }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return try outcome.withLock { $0! }.get()
    }

    /// Calls `body` on the loop after `milliseconds`. Loop-confined.
    @discardableResult
    package func schedule(afterMilliseconds milliseconds: Int, _ body: @escaping () -> Void) -> TimerQueue<() -> Void>.ID {
        assertInLoop()
        let deadline = MonotonicClock.nanoseconds() + UInt64(max(0, milliseconds)) * 1_000_000
        return timers.schedule(at: deadline, body)
    }

    /// Loop-confined. Cancelling a timer that already ran does nothing.
    package func cancel(_ timer: TimerQueue<() -> Void>.ID) {
        assertInLoop()
        timers.cancel(timer)
    }

    /// Asks the thread to finish once everything submitted so far has run. From any thread
    /// but the loop's; registered descriptors stay open (their owners close them).
    package func shutdown() {
        let wake = submissions.withLock { state -> Bool in
            state.stopping = true
            defer { state.wakePending = true }
            return !state.wakePending
        }
        if wake { signalWake() }
        if !inLoop { pthread_join(thread, nil) }
    }

    func submit(_ work: Work) {
        let wake = submissions.withLock { state -> Bool in
            state.work.append(work)
            defer { state.wakePending = true }
            return !state.wakePending
        }
        if wake { signalWake() }
    }

    private func signalWake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    // MARK: the thread

    private static let currentLoopKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0)
        return key
    }()

    private func run() {
        pthread_setspecific(Self.currentLoopKey, Unmanaged.passUnretained(self).toOpaque())
        // Named for `perf`, `top -H` and gdb (the kernel keeps 15 bytes).
        _ = cepoll_name_this_thread(String(name.suffix(15)))
        let capacity = 128
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while !finished {
            let count = epoll_wait(epollFD, events, Int32(capacity), waitMilliseconds())
            if count > 0 {
                for index in 0..<Int(count) { dispatch(events[index]) }
            }
            runDueTimers()
            runSubmitted()
        }
    }

    /// -1 (forever) with no timer, else until the earliest timer
    /// (rounded up: waking early would only loop back to sleep).
    private func waitMilliseconds() -> Int32 {
        guard let deadline = timers.nextDeadline() else { return -1 }
        let now = MonotonicClock.nanoseconds()
        guard deadline > now else { return 0 }
        return Int32(clamping: (deadline - now + 999_999) / 1_000_000)
    }

    private func dispatch(_ event: epoll_event) {
        let token = event.data.u64
        if token == Self.wakeToken {
            var count: UInt64 = 0
            _ = Glibc.read(wakeFD, &count, 8)
            return
        }
        registrations.handler(for: token)?.ready(Readiness(events: event.events))
    }

    private func runDueTimers() {
        guard timers.count > 0 else { return }
        let now = MonotonicClock.nanoseconds()
        while let body = timers.popDue(now: now) { body() }
    }

    private func runSubmitted() {
        let (work, stopping) = submissions.withLock { state -> ([Work], Bool) in
            let work = state.work
            state.work.removeAll(keepingCapacity: true)
            state.wakePending = false
            return (work, state.stopping)
        }
        let executor = asUnownedSerialExecutor()
        let taskExecutor = asUnownedTaskExecutor()
        for item in work {
            switch item {
            // Whether the job is an actor's or a task's that prefers this loop, it runs here,
            // serialised with everything else on the loop.
            case .job(let job): job.runSynchronously(isolatedTo: executor, taskExecutor: taskExecutor)
            case .closure(let body): body()
            }
        }
        if stopping { finished = true }
    }

    // MARK: descriptors (loop-confined)

    /// Watches `fd` for `interest`; `handler` is kept (strongly) until `deregister`.
    package func register(_ fd: Int32, interest: Interest, handler: any ReadinessHandler) throws(SystemCallError) -> Registration {
        assertInLoop()
        let registration = registrations.insert(fd: fd, handler: handler)
        do {
            try setInterest(interest, for: registration)
        } catch {
            registrations.remove(registration)
            throw error
        }
        return registration
    }

    /// An empty interest takes the descriptor out of epoll altogether: epoll reports a
    /// hangup even to a descriptor that asks for nothing, which would spin a paused reader.
    package func setInterest(_ interest: Interest, for registration: Registration) throws(SystemCallError) {
        assertInLoop()
        guard let current = registrations.slot(registration) else { return }
        guard current.interest != interest || !current.inEpoll && !interest.isEmpty else { return }
        var event = epoll_event(events: interest.rawValue, data: epoll_data_t(u64: registration.token))
        let result: Int32
        switch (current.inEpoll, interest.isEmpty) {
        case (false, true): result = 0
        case (false, false): result = epoll_ctl(epollFD, EPOLL_CTL_ADD, current.fd, &event)
        case (true, true): result = epoll_ctl(epollFD, EPOLL_CTL_DEL, current.fd, nil)
        case (true, false): result = epoll_ctl(epollFD, EPOLL_CTL_MOD, current.fd, &event)
        }
        guard result == 0 else { throw SystemCallError("epoll_ctl", errno: errno) }
        registrations.update(registration, interest: interest, inEpoll: !interest.isEmpty)
    }

    /// Stops watching and lets go of the handler. Call before closing the descriptor.
    /// Idempotent; an event already fetched for it in this wakeup is dropped.
    package func deregister(_ registration: Registration) {
        assertInLoop()
        guard let current = registrations.slot(registration) else { return }
        if current.inEpoll { _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, current.fd, nil) }
        registrations.remove(registration)
    }
}

/// Also a task executor: a task started with `executorPreference: loop` runs its
/// nonisolated parts (continuations resumed, awaited helpers) on the loop too, never on the
/// shared pool, which blocking callers (tests, setup) may have filled.
extension EventLoop: TaskExecutor {
    package func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}

extension EventLoop: SerialExecutor {
    package func enqueue(_ job: consuming ExecutorJob) {
        submit(.job(UnownedJob(job)))
    }

    package func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// `assumeIsolated` from a descriptor handler (which runs outside any job) asks this:
    /// the actor's code may run because this thread is the loop that serialises it.
    package func checkIsolated() {
        assertInLoop()
    }

    package func isIsolatingCurrentContext() -> Bool? {
        inLoop
    }
}
