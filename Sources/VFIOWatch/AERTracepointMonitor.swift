import EventLoop
import KernelTracepoint
import Logging

/// Host AER errors as the kernel's AER core handles them, through the `ras:aer_event`
/// tracepoint (rasdaemon's source): every error, correctable ones included, names the
/// function that reported it, within a loop turn of the kernel printing it. Correctable
/// errors fire no vfio ERR eventfd and no uevent, so without this only the sysfs poll
/// sees them (SPEC 11).
///
/// `handler` gets each event and when the kernel emitted it (CLOCK_MONOTONIC nanoseconds,
/// `MonotonicClock`'s clock). Loop-confined, like `UEventMonitor`; one per process, on
/// the first loop.
package final class AERTracepointMonitor {
    package let loop: EventLoop
    private let directories: [String]
    private let logger: Logger
    private let handler: (AERTraceEvent, UInt64) -> Void
    private let onLost: (UInt64) -> Void
    private var subscription: TracepointSubscription?

    /// `directories`: where to look for tracefs (`Tracefs.directories`).
    package init(loop: EventLoop, directories: [String] = Tracefs.directories, logger: Logger,
                handler: @escaping (AERTraceEvent, UInt64) -> Void, onLost: @escaping (UInt64) -> Void) {
        self.loop = loop
        self.directories = directories
        self.logger = logger
        self.handler = handler
        self.onLost = onLost
    }

    package var isRunning: Bool { subscription?.isRunning ?? false }

    /// Reads the tracepoint's layout and subscribes on every CPU. Throws the reason when
    /// it cannot (no tracefs, no CONFIG_PCIEAER, no CAP_PERFMON): the caller keeps the
    /// sysfs poll at its fallback rate.
    package func start() throws(TracepointError) {
        loop.assertInLoop()
        guard subscription == nil else { return }
        let format = try Tracefs.format(system: AERTraceLayout.system, event: AERTraceLayout.event, in: directories)
        let layout: AERTraceLayout
        do {
            layout = try AERTraceLayout(format)
        } catch {
            throw .format(error)
        }
        let logger = self.logger
        let handler = self.handler
        let subscription = TracepointSubscription(loop: loop, format: format, logger: logger, onRecord: { raw, emitted in
            guard let event = layout.decode(raw) else {
                logger.debug("ignoring an unreadable ras:aer_event record", metadata: ["bytes": "\(raw.count)"])
                return
            }
            handler(event, emitted)
        }, onLost: onLost)
        try subscription.start()
        self.subscription = subscription
    }

    /// Unsubscribes. Idempotent.
    package func cancel() {
        subscription?.cancel()
        subscription = nil
    }
}
