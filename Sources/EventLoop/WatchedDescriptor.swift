/// A descriptor on a loop, owned: the one way the broker watches a socket, eventfd, inotify
/// or netlink descriptor. It registers lazily (the first non-empty interest), and `close()`
/// deregisters before closing, so the number is never closed while epoll still has it.
///
/// While registered, the loop holds it (and so whatever `onReady` captures) alive: owners
/// must `close()` what they drop, as with a Dispatch source they must cancel.
/// Loop-confined, like everything it calls.
package final class WatchedDescriptor: ReadinessHandler {
    package let loop: EventLoop
    package let fd: Int32
    private var owned: OwnedFD?
    private var registration: Registration?
    package private(set) var interest: Interest = []
    package var onReady: (Readiness) -> Void = { _ in }

    package init(adopting fd: Int32, loop: EventLoop) {
        self.loop = loop
        self.fd = fd
        self.owned = OwnedFD(adopting: fd)
    }

    package var isOpen: Bool { owned != nil }

    package func setInterest(_ wanted: Interest) throws(SystemCallError) {
        guard owned != nil, wanted != interest else { return }
        if let registration {
            try loop.setInterest(wanted, for: registration)
        } else if !wanted.isEmpty {
            registration = try loop.register(fd, interest: wanted, handler: self)
        }
        interest = wanted
    }

    /// Deregisters and closes. Idempotent.
    package func close() {
        if let registration { loop.deregister(registration) }
        registration = nil
        onReady = { _ in }
        owned.take()?.close()
    }

    package func ready(_ readiness: Readiness) {
        onReady(readiness)
    }
}
