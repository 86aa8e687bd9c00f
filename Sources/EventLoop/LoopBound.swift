/// A loop-confined value that may be handed around between threads but only touched on
/// its loop (SwiftNIO's `NIOLoopBound`): the way code off the loop holds a non-Sendable
/// handler, connection or monitor, and the one place that trust is checked.
///
/// `@unchecked Sendable`: `value` traps unless called on `loop`'s thread, and the loop runs
/// one thing at a time, so the wrapped value is never used from two threads at once.
package struct LoopBound<Value>: @unchecked Sendable {
    package let loop: EventLoop
    private let wrapped: Value

    /// `sending`: nothing else holds the value, so it may start life off the loop.
    package init(_ value: sending Value, loop: EventLoop) {
        self.loop = loop
        self.wrapped = value
    }

    package var value: Value {
        loop.assertInLoop()
        return wrapped
    }
}
