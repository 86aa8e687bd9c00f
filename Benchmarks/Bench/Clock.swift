import Glibc

/// CLOCK_MONOTONIC, shared by every process on the machine: the fan-out reader and the
/// scripted VMM stamp with it too, so their stamps and the bench's can be subtracted.
enum Clock {
    static func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    static func microseconds(since start: UInt64, until end: UInt64 = nanoseconds()) -> Double {
        Double(Int64(bitPattern: end &- start)) / 1000
    }

    static func microseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = nanoseconds()
        try body()
        return microseconds(since: start)
    }
}
