import Glibc

/// CLOCK_MONOTONIC, the one clock of timers, timeouts, deadlines and latency figures.
/// Its reading is nanoseconds; every other unit is an explicit conversion of that.
/// CLOCK_MONOTONIC is shared by every process on the machine, so stamps taken by another
/// process (the kernel's perf samples, a scripted VMM, the bench's reader) compare too.
package enum MonotonicClock {
    package static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Whole milliseconds (the unit of the upstream command deadlines).
    package static func milliseconds() -> UInt64 { nanoseconds() / 1_000_000 }

    /// Seconds as a `Double` (the unit of the blocking tools' deadlines).
    package static func seconds() -> Double { Double(nanoseconds()) / 1e9 }

    /// Microseconds from `start` to `end` (both `nanoseconds()` readings); negative when
    /// `end` came first.
    package static func microseconds(since start: UInt64, until end: UInt64 = nanoseconds()) -> Double {
        Double(Int64(bitPattern: end &- start)) / 1000
    }
}
