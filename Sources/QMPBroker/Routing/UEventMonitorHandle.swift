import EventLoop
import Logging
import VFIOWatch

/// The process's uevent monitor, reached from outside its loop: `Broker`'s package entry
/// points run on the caller's thread and go to the loop to start and stop it.
struct UEventMonitorHandle: Sendable {
    private let monitor: LoopBound<UEventMonitor>

    init(loop: EventLoop, logger: Logger, handler: @escaping @Sendable (UEvent) -> Void) {
        monitor = LoopBound(UEventMonitor(loop: loop, logger: logger, handler: handler), loop: loop)
    }

    /// Throws the reason when the kernel refused.
    func start() throws(UEventMonitorError) {
        try monitor.loop.runAndWait { [monitor] () throws(UEventMonitorError) in try monitor.value.start() }
    }

    func cancel() {
        monitor.loop.runAndWait { [monitor] in monitor.value.cancel() }
    }
}
