import EventLoop
import Glibc

/// A non-blocking unix stream socket on an event loop. Everything happens on the loop's
/// thread: callbacks fire there, and send/close/start must be called there.
///
/// Why not SwiftNIO: QMP's `getfd`/`add-fd` pass descriptors as SCM_RIGHTS ancillary data on
/// stream sockets, which NIO can neither send nor receive.
///
/// All sockets of one VM share its loop, so nothing here locks, and writing an event to a
/// client is a plain call that tries the syscall at once. Epoll is level-triggered: the
/// socket is watched for reading while reading is wanted, and for writing only while output
/// is queued.
///
/// Lifetime: once watched (started, or with queued output) the loop keeps the connection
/// alive until it closes; owners must `close()` a connection they drop. Reading and writing
/// live in the `+Reading` and `+Writing` extensions.
package final class UnixStreamConnection {
    /// Called with each batch of received bytes and the descriptors that arrived with them.
    /// The bytes are valid only during the call (they live in a buffer shared by every
    /// connection on the thread); the handler owns the descriptors.
    package typealias ReadHandler = (_ bytes: UnsafeRawBufferPointer, _ fds: [Int32]) -> Void

    enum State { case idle, started, inputEnded, closed }

    package var loop: EventLoop { descriptor.loop }
    package var onRead: ReadHandler?
    /// Called exactly once, after which the fd is closed. Also called synchronously from
    /// `send` when the output queue overflows or the socket fails.
    package var onClose: ((ConnectionCloseReason) -> Void)?
    /// When set, the peer's end of input (a half-close, as `socat` does after its input)
    /// stops reading but keeps the connection open for writing: the owner finishes its
    /// replies and then calls `closeAfterFlushing()`. When nil, end of input closes.
    package var onEndOfInput: (() -> Void)?
    var closeWhenFlushed = false
    /// Output is queued, not written, until `uncork()`.
    var corked = false
    /// Reading pauses while more than this is queued (QEMU's monitor likewise stops reading
    /// a client while its answers are pending), and resumes below half of it. nil: never.
    package var readPauseThreshold: Int?
    /// Called when reading resumes, before the socket is read again: the owner goes on
    /// with input it held back when the pause began (and may pause again).
    package var onReadResumed: (() -> Void)?
    /// Whether reading is paused for backpressure; the owner stops consuming input too.
    package internal(set) var readPaused = false

    let descriptor: WatchedDescriptor
    var state = State.idle
    var output: OutputQueue

    var fd: Int32 { descriptor.fd }
    package var isOpen: Bool { state != .closed }
    /// Whether reading stopped because the peer half-closed.
    package var inputEnded: Bool { state == .inputEnded }
    package var queuedBytes: Int { output.byteCount }

    /// Takes ownership of a connected unix stream socket.
    package init(adopting fd: Int32, loop: EventLoop, maxQueuedBytes: Int) {
        self.descriptor = WatchedDescriptor(adopting: fd, loop: loop)
        self.output = OutputQueue(limit: maxQueuedBytes)
        descriptor.onReady = { [unowned self] readiness in ready(readiness) }
    }

    /// Connects without blocking. A listener whose backlog is full fails with EAGAIN rather
    /// than stalling the loop; callers retry later, as they do for a missing socket.
    package static func connect(
        toPath path: String, loop: EventLoop, maxQueuedBytes: Int
    ) throws(SystemCallError) -> UnixStreamConnection {
        let fd = try StreamSocketCalls.makeSocket(for: path)
        let failure: SystemCallError?
        do {
            failure = try UnixSocketAddress.with(path) {
                Glibc.connect(fd, $0, $1) == 0 ? nil : SystemCallError.last("connect(\(path))")
            }
        } catch {
            failure = error
        }
        if let failure {
            _ = Glibc.close(fd)
            throw failure
        }
        return UnixStreamConnection(adopting: fd, loop: loop, maxQueuedBytes: maxQueuedBytes)
    }

    deinit {
        // Only reachable while unwatched (a watched connection is held by its loop) or once
        // closed; the descriptor closes itself.
        StreamSocketCalls.closeAll(output.removeAll())
    }

    /// Starts reading. Sending works before this too.
    package func start() {
        loop.assertInLoop()
        guard state == .idle else { return }
        state = .started
        updateInterest()
    }

    /// Closes now, dropping queued output; `onClose(.local)`.
    package func close() {
        loop.assertInLoop()
        shutDown(.local)
    }

    package func peerCredentials() -> PeerCredentials? {
        guard isOpen else { return nil }
        return PeerCredentials.of(socket: fd)
    }

    /// Level-triggered readiness: readable (or hung up) reads, writable flushes.
    func ready(_ readiness: Readiness) {
        if readiness.writable || readiness.hangup, !output.isEmpty { flushQueued() }
        if readiness.readable || readiness.hangup { readAvailable() }
    }

    /// Watches for what is wanted now: reading while started and not paused, writing while
    /// output waits. Nothing wanted takes the socket out of epoll.
    func updateInterest() {
        guard state != .closed else { return }
        var interest: Interest = []
        if state == .started && !readPaused { interest.insert(.read) }
        if !output.isEmpty { interest.insert(.write) }
        do {
            try descriptor.setInterest(interest)
        } catch {
            shutDown(.error(error.errno))
        }
    }

    /// The one way a connection closes: stop watching, drop queued output, tell the owner,
    /// then close the descriptor.
    func shutDown(_ reason: ConnectionCloseReason) {
        guard state != .closed else { return }
        state = .closed
        StreamSocketCalls.closeAll(output.removeAll())
        let handler = onClose
        // The handlers usually capture the connection's owner; drop them to break the cycle.
        onRead = nil
        onClose = nil
        onEndOfInput = nil
        onReadResumed = nil
        handler?(reason)
        descriptor.close()
    }
}
