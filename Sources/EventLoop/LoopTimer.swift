/// One timer slot on a loop: arming it again replaces what was armed, so an owner never
/// juggles timer ids. Loop-confined; the loop keeps the body (not the owner) until it runs.
package final class LoopTimer {
    package let loop: EventLoop
    private var pending: TimerQueue<() -> Void>.ID?

    package init(loop: EventLoop) {
        self.loop = loop
    }

    package var isArmed: Bool { pending != nil }

    /// Runs `body` once after `milliseconds`, replacing whatever was armed.
    package func arm(afterMilliseconds milliseconds: Int, _ body: @escaping () -> Void) {
        cancel()
        pending = loop.schedule(afterMilliseconds: milliseconds) { [weak self] in
            self?.pending = nil
            body()
        }
    }

    /// Runs `body` every `milliseconds` until cancelled.
    package func repeating(everyMilliseconds milliseconds: Int, _ body: @escaping () -> Void) {
        arm(afterMilliseconds: milliseconds) { [weak self] in
            self?.repeating(everyMilliseconds: milliseconds, body)
            body()
        }
    }

    package func cancel() {
        if let pending { loop.cancel(pending) }
        pending = nil
    }

    deinit {
        if let pending, loop.inLoop { loop.cancel(pending) }
    }
}
