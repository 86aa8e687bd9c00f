import EventLoop
import Glibc
import Logging

/// Watches one eventfd on an event loop and reports how many signals arrived.
///
/// When the fd is readable the watcher drains the counter with one non-blocking read —
/// signals that arrived meanwhile coalesce into one call with their sum — and calls
/// `handler` inline on the loop: a host error reaches its VM with no thread hop. `cancel()`
/// closes the fd and then calls `onCancel`. Loop-confined; nothing blocks.
///
/// The watcher owns the fd from a successful `init` on; if `init` throws, the caller
/// still owns it. Call `cancel()` to close it: until then the loop keeps the watcher alive.
package final class EventFDWatcher {
    package let fd: Int32
    package var loop: EventLoop { descriptor.loop }
    private let descriptor: WatchedDescriptor
    private let handler: (UInt64) -> Void
    private var onCancel: (() -> Void)?
    private let logger: Logger

    /// Checks that `fd` is an eventfd and makes it non-blocking; `start()` begins watching.
    package init(
        fd: Int32,
        loop: EventLoop,
        logger: Logger = Logger(label: "qmp-broker.vfio-watch"),
        onCancel: (() -> Void)? = nil,
        handler: @escaping (UInt64) -> Void
    ) throws(EventFDError) {
        try EventFD.validate(fd)
        try EventFD.setNonBlocking(fd)
        self.fd = fd
        self.descriptor = WatchedDescriptor(adopting: fd, loop: loop)
        self.handler = handler
        self.onCancel = onCancel
        var logger = logger
        logger[metadataKey: "eventfd"] = "\(fd)"
        self.logger = logger
        descriptor.onReady = { [unowned self] _ in drainAndReport() }
    }

    /// Begins watching; a signal that arrived before `start()` is reported right away
    /// (the loop is level-triggered).
    package func start() {
        do {
            try descriptor.setInterest(.read)
        } catch {
            logger.error("Cannot watch eventfd: \(error)")
        }
    }

    /// Stops watching and closes the fd, then calls `onCancel`. Idempotent.
    package func cancel() {
        guard descriptor.isOpen else { return }
        descriptor.close()
        let onCancel = self.onCancel
        self.onCancel = nil
        onCancel?()
    }

    private func drainAndReport() {
        do {
            guard let count = try EventFD.drain(fd) else { return }  // Already drained.
            handler(count)
        } catch {
            // The fd stays readable, so the loop would report it again at once: stop instead.
            logger.error("Stopped watching eventfd: \(error)")
            cancel()
        }
    }
}
