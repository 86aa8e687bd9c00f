import EventLoop
import KernelTracepoint
import Logging
import VFIOWatch

/// The process's `ras:aer_event` subscription, reached from outside its loop, as
/// `UEventMonitorHandle` is: `Broker`'s entry points go to the loop to start and stop it.
struct AERTracepointHandle: Sendable {
    private let monitor: LoopBound<AERTracepointMonitor>

    init(loop: EventLoop, logger: Logger, handler: @escaping @Sendable (AERTraceEvent, UInt64) -> Void,
         onLost: @escaping @Sendable (UInt64) -> Void) {
        monitor = LoopBound(AERTracepointMonitor(loop: loop, logger: logger, handler: handler, onLost: onLost), loop: loop)
    }

    /// Throws the reason when the tracepoint cannot be heard.
    func start() throws(TracepointError) {
        try monitor.loop.runAndWait { [monitor] () throws(TracepointError) in try monitor.value.start() }
    }

    var isRunning: Bool {
        monitor.loop.runAndWait { [monitor] in monitor.value.isRunning }
    }

    func cancel() {
        monitor.loop.runAndWait { [monitor] in monitor.value.cancel() }
    }
}
