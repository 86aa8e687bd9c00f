import EventLoop

/// A monotonic deadline for bounded waits.
public struct Deadline {
    private let end: Double
    public init(after seconds: Double) { end = Self.now() + seconds }
    public var remaining: Double { max(0, end - Self.now()) }
    public var passed: Bool { Self.now() >= end }
    /// `MonotonicClock` in seconds.
    public static func now() -> Double { MonotonicClock.seconds() }
}
