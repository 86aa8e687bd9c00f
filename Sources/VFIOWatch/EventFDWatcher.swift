import Dispatch
import Glibc
import Logging

/// Watches one eventfd and reports how many signals arrived.
///
/// Everything runs on `queue` (a serial queue the caller supplies): when the fd is
/// readable the watcher drains the counter with one non-blocking read — signals that
/// arrived meanwhile coalesce into one call with their sum — and calls `handler`; when
/// cancelled it closes the fd in the dispatch source's cancel handler, then calls
/// `onCancel`. Nothing blocks. `start()` and `cancel()` only poke the dispatch source
/// and may be called from any thread.
///
/// The watcher owns the fd from a successful `init` on; if `init` throws, the caller
/// still owns it. Call `cancel()` to close it: until then the dispatch source keeps the
/// watcher alive.
/// `@unchecked Sendable`: the fd and its source are used only on the queue it was made
/// with; `cancel()` only cancels the source, which Dispatch allows from any thread.
public final class EventFDWatcher: @unchecked Sendable {
    public let fd: Int32
    public let queue: DispatchQueue
    private let source: DispatchSourceRead
    private let handler: (UInt64) -> Void
    private let onCancel: (() -> Void)?
    private let logger: Logger

    /// Checks that `fd` is an eventfd and makes it non-blocking; `start()` begins watching.
    public init(
        fd: Int32,
        queue: DispatchQueue,
        logger: Logger = Logger(label: "qmp-broker.vfio-watch"),
        onCancel: (() -> Void)? = nil,
        handler: @escaping (UInt64) -> Void
    ) throws(EventFDError) {
        try EventFD.validate(fd)
        try EventFD.setNonBlocking(fd)
        self.fd = fd
        self.queue = queue
        self.handler = handler
        self.onCancel = onCancel
        var logger = logger
        logger[metadataKey: "eventfd"] = "\(fd)"
        self.logger = logger
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [self] in drainAndReport() }
        source.setCancelHandler {
            close(fd)
            onCancel?()
        }
    }

    /// Begins watching; a signal that arrived before `start()` is reported right away.
    public func start() {
        source.activate()
    }

    /// Stops watching and closes the fd (on `queue`, then `onCancel`). Idempotent.
    public func cancel() {
        source.cancel()
        // A source that was never started runs its cancel handler only once activated;
        // activating an active source does nothing.
        source.activate()
    }

    /// Runs on `queue` whenever the fd is readable.
    private func drainAndReport() {
        do {
            guard let count = try EventFD.drain(fd) else { return }  // Already drained.
            handler(count)
        } catch {
            // The fd stays readable, so the source would fire again at once: stop instead.
            logger.error("Stopped watching eventfd: \(error)")
            source.cancel()
        }
    }
}
