import EventLoop
import Logging
import VFIOWatch

/// The process's uevent monitor, reached from outside its loop: `Broker`'s public entry
/// points run on the caller's thread and go to the loop to start and stop it.
struct UEventMonitorHandle: Sendable {
    private let monitor: LoopBound<UEventMonitor>

    init(loop: EventLoop, logger: Logger, handler: @escaping @Sendable (UEvent) -> Void) {
        monitor = LoopBound(UEventMonitor(loop: loop, logger: logger, handler: handler), loop: loop)
    }

    /// nil once listening; the reason when the kernel refused.
    func start() -> UEventMonitorError? {
        monitor.loop.runAndWait { [monitor] () -> UEventMonitorError? in
            do throws(UEventMonitorError) {
                try monitor.value.start()
                return nil
            } catch {
                return error
            }
        }
    }

    func cancel() {
        monitor.loop.runAndWait { [monitor] in monitor.value.cancel() }
    }
}
