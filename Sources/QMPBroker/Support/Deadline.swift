import Glibc

/// A monotonic deadline for bounded waits.
public struct Deadline {
    private let end: Double
    public init(after seconds: Double) { end = Self.now() + seconds }
    public var remaining: Double { max(0, end - Self.now()) }
    public var passed: Bool { Self.now() >= end }
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
