import EventLoop

/// A monotonic deadline for bounded waits.
package struct Deadline {
    private let end: Double
    package init(after seconds: Double) { end = Self.now() + seconds }
    package var remaining: Double { max(0, end - Self.now()) }
    package var passed: Bool { Self.now() >= end }
    /// `MonotonicClock` in seconds.
    package static func now() -> Double { MonotonicClock.seconds() }
}
