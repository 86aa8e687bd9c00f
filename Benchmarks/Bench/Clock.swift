import EventLoop

/// The bench's stopwatch on `MonotonicClock`: the fan-out reader and the scripted VMM
/// stamp with CLOCK_MONOTONIC too, so their stamps and the bench's can be subtracted.
enum Clock {
    static func nanoseconds() -> UInt64 { MonotonicClock.nanoseconds() }

    static func microseconds(since start: UInt64, until end: UInt64 = MonotonicClock.nanoseconds()) -> Double {
        MonotonicClock.microseconds(since: start, until: end)
    }

    static func microseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = MonotonicClock.nanoseconds()
        try body()
        return MonotonicClock.microseconds(since: start)
    }
}
