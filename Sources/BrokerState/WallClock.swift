#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time as stored in the state file: microseconds since the Unix epoch (UTC).
///
/// Wall-clock rather than monotonic because the value must mean something to an operator
/// and to the next broker process. Ordering never relies on it: history is ordered by
/// insertion, so a clock step does not reorder errors. The one reading of CLOCK_REALTIME:
/// QMP timestamps and log lines take theirs from here too.
package enum WallClock {
    package static func microsecondsSinceEpoch() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
    }

    /// The reading as QMP's `timestamp` writes it: whole seconds, and microseconds past them.
    package static func qmpTimestamp() -> (seconds: Int64, microseconds: Int64) {
        let now = microsecondsSinceEpoch()
        return (now / 1_000_000, now % 1_000_000)
    }
}
