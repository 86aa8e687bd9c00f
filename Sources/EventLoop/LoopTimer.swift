/// One timer slot on a loop: arming it again replaces what was armed, so an owner never
/// juggles timer ids. Loop-confined; the loop keeps the body (not the owner) until it runs.
public final class LoopTimer {
    public let loop: EventLoop
    private var pending: TimerQueue<() -> Void>.ID?

    public init(loop: EventLoop) {
        self.loop = loop
    }

    public var isArmed: Bool { pending != nil }

    /// Runs `body` once after `milliseconds`, replacing whatever was armed.
    public func arm(afterMilliseconds milliseconds: Int, _ body: @escaping () -> Void) {
        cancel()
        pending = loop.schedule(afterMilliseconds: milliseconds) { [weak self] in
            self?.pending = nil
            body()
        }
    }

    /// Runs `body` every `milliseconds` until cancelled.
    public func repeating(everyMilliseconds milliseconds: Int, _ body: @escaping () -> Void) {
        arm(afterMilliseconds: milliseconds) { [weak self] in
            self?.repeating(everyMilliseconds: milliseconds, body)
            body()
        }
    }

    public func cancel() {
        if let pending { loop.cancel(pending) }
        pending = nil
    }

    deinit {
        if let pending, loop.inLoop { loop.cancel(pending) }
    }
}
