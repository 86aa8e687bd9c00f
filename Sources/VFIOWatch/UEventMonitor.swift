import EventLoop
import Glibc
import Logging

/// Listens to kernel uevents and hands each one to `handler`.
///
/// Opens an `AF_NETLINK`/`NETLINK_KOBJECT_UEVENT` datagram socket bound to the kernel's
/// multicast group 1 and reads it on an event loop. Only datagrams whose sender
/// is port 0 are accepted: the kernel itself, or a process with CAP_SYS_ADMIN that has
/// the kernel relay a uevent (lib/kobject_uevent.c, `uevent_net_rcv_skb`). udev's
/// re-broadcasts (group 2, `libudev` format) are ignored.
///
/// Loop-confined: call `start()` and `cancel()` on the loop; reading, parsing and `handler`
/// happen there. Nothing blocks: the socket is non-blocking.
///
/// Uevents go to the initial network namespace only; in a container the socket may open
/// and stay silent, or not open at all (`start()` throws).
package final class UEventMonitor {
    package let loop: EventLoop
    private let handler: (UEvent) -> Void
    private let logger: Logger
    private var state: State = .idle
    /// One receive buffer for the monitor's life, not one per wakeup.
    private var buffer = [UInt8](repeating: 0, count: UEventMonitor.receiveBufferSize)

    private enum State {
        case idle
        case running(WatchedDescriptor)
        case cancelled
    }

    /// The kernel's limit is 2048 bytes (UEVENT_BUFFER_SIZE); room to spare for relays.
    static let receiveBufferSize = 8192
    /// Datagrams handled per wakeup before letting the loop serve others; the rest is
    /// reported again (level-triggered).
    static let datagramsPerWakeup = 64

    package init(loop: EventLoop, logger: Logger = Logger(label: "qmp-broker.vfio-watch"), handler: @escaping (UEvent) -> Void) {
        self.loop = loop
        self.logger = logger
        self.handler = handler
    }

    /// True between a successful `start()` and `cancel()`.
    package var isRunning: Bool {
        loop.assertInLoop()
        if case .running = state { return true }
        return false
    }

    /// Opens the socket and begins listening. Throws when the kernel refuses the socket
    /// (e.g. EPERM or EPROTONOSUPPORT in a container): the caller logs it once and goes
    /// on without uevents. Calling it again while running does nothing.
    package func start() throws(UEventMonitorError) {
        loop.assertInLoop()
        switch state {
        case .running: return
        case .cancelled: throw UEventMonitorError(SystemCallError("start after cancel", errno: ECANCELED))
        case .idle: break
        }
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), NetlinkAddress.kobjectUEventProtocol)
        guard fd >= 0 else { throw UEventMonitorError(.last("socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT)")) }
        let address = NetlinkAddress(portID: 0, groups: NetlinkAddress.kernelUEventGroup)
        guard address.withSocketAddress({ bind(fd, $0, $1) }) == 0 else {
            let error = SystemCallError.last("bind(NETLINK_KOBJECT_UEVENT, group 1)")
            close(fd)
            throw UEventMonitorError(error)
        }
        // Bursts of uevents (a whole bus recovering) overflow the default buffer; ask for
        // more, best effort (the kernel caps it at rmem_max).
        var bufferSize: Int32 = 1 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))

        let descriptor = WatchedDescriptor(adopting: fd, loop: loop)
        descriptor.onReady = { [unowned self] _ in receive(from: fd) }
        do {
            try descriptor.setInterest(.read)
        } catch {
            descriptor.close()
            throw UEventMonitorError(SystemCallError("epoll_ctl(NETLINK_KOBJECT_UEVENT)", errno: error.errno))
        }
        state = .running(descriptor)
    }

    /// Stops listening and closes the socket. Idempotent.
    package func cancel() {
        loop.assertInLoop()
        if case .running(let descriptor) = state { descriptor.close() }
        state = .cancelled
    }

    /// Runs on the loop when the socket is readable.
    private func receive(from fd: Int32) {
        var sender = sockaddr_storage()
        for _ in 0..<Self.datagramsPerWakeup {
            // The handler may have cancelled us (and closed the fd).
            guard case .running = state else { return }
            var senderLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let length = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &sender) { storage in
                    storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                        // MSG_TRUNC: return the datagram's real length, to notice truncation.
                        retryingOnInterrupt { recvfrom(fd, bytes.baseAddress, bytes.count, Int32(MSG_TRUNC), address, &senderLength) }
                    }
                }
            }
            if length < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK:
                    return
                case ENOBUFS:
                    // The kernel dropped uevents because we were slow; the rest still comes.
                    logger.warning("Kernel uevents were lost: socket receive buffer overflowed")
                    continue
                default:
                    logger.error("Stopped listening to kernel uevents: \(SystemCallError.last("recvfrom(NETLINK_KOBJECT_UEVENT)"))")
                    cancel()
                    return
                }
            }
            let fromKernel = withUnsafeBytes(of: &sender) { NetlinkAddress(bytes: $0, length: Int(senderLength)) }?.portID == 0
            guard fromKernel else {
                logger.debug("Ignoring a uevent datagram not sent by the kernel")
                continue
            }
            guard length <= buffer.count else {
                logger.warning("Ignoring a truncated uevent of \(length) bytes")
                continue
            }
            switch UEvent.parse(buffer[..<length]) {
            case .event(let event):
                handler(event)
            case .libudev:
                continue
            case .malformed(let reason):
                logger.debug("Ignoring a malformed uevent: \(reason)")
            }
        }
    }
}

/// The uevent socket could not be opened; the text is fit for a log line.
package struct UEventMonitorError: Error, Hashable, Sendable, CustomStringConvertible {
    package let underlying: SystemCallError

    package init(_ underlying: SystemCallError) {
        self.underlying = underlying
    }

    package var description: String { "Cannot listen to kernel uevents: \(underlying)" }
}
