import Dispatch
import Glibc

/// A non-blocking unix stream socket driven by Dispatch sources. Everything happens on `queue`:
/// callbacks fire there, and send/close/start must be called there.
///
/// Why not SwiftNIO: QMP's `getfd`/`add-fd` pass descriptors as SCM_RIGHTS ancillary data on
/// stream sockets, which NIO can neither send nor receive. Dispatch gives epoll underneath.
///
/// All sockets of one VM share one serial queue, so nothing here locks, and writing an
/// event to a client is a plain call that tries the syscall at once.
///
/// Lifetime: once started (or once it has had to queue output) the connection keeps itself
/// alive, its Dispatch sources holding it, until it closes; owners must `close()` a
/// connection they drop. Reading and writing live in the `+Reading` and `+Writing` extensions.
/// `@unchecked Sendable`: all state lives on `queue` (its Dispatch sources and every
/// caller run there); only the immutable fd and queue are read elsewhere.
public final class UnixStreamConnection: @unchecked Sendable {
    /// Called with each batch of received bytes and the descriptors that arrived with them.
    /// The bytes are valid only during the call (they live in a buffer shared by every
    /// connection on the thread); the handler owns the descriptors.
    public typealias ReadHandler = (_ bytes: UnsafeRawBufferPointer, _ fds: [Int32]) -> Void

    enum State { case idle, started, inputEnded, closed }

    public let queue: DispatchQueue
    public var onRead: ReadHandler?
    /// Called exactly once, after which the fd is closed. Also called synchronously from
    /// `send` when the output queue overflows or the socket fails.
    public var onClose: ((ConnectionCloseReason) -> Void)?
    /// Called when a client sent more descriptors than one message may carry (QEMU's
    /// limit, 16): those that arrived are closed, the bytes are still delivered. For logging.
    public var onControlTruncated: (() -> Void)?
    /// When set, the peer's end of input (a half-close, as `socat` does after its input)
    /// stops reading but keeps the connection open for writing: the owner finishes its
    /// replies and then calls `closeAfterFlushing()`. When nil, end of input closes.
    public var onEndOfInput: (() -> Void)?
    var closeWhenFlushed = false
    /// Reading pauses while more than this is queued (QEMU's monitor likewise stops reading
    /// a client while its answers are pending), and resumes below half of it. nil: never.
    public var readPauseThreshold: Int?
    /// Called when reading resumes, before the socket is read again: the owner goes on
    /// with input it held back when the pause began (and may pause again).
    public var onReadResumed: (() -> Void)?
    /// Whether reading is paused for backpressure; the owner stops consuming input too.
    public internal(set) var readPaused = false
    var readSourceSuspended = false

    let descriptor: SourcedDescriptor
    var state = State.idle
    var output: OutputQueue
    var readSource: DispatchSourceRead?
    /// Created at the first EAGAIN; resumed (armed) exactly while `output` is not empty.
    var writeSource: DispatchSourceWrite?
    var writeSourceArmed = false

    var fd: Int32 { descriptor.fd }
    public var isOpen: Bool { state != .closed }
    /// Whether reading stopped because the peer half-closed.
    public var inputEnded: Bool { state == .inputEnded }
    public var queuedBytes: Int { output.byteCount }

    /// Takes ownership of a connected unix stream socket.
    public init(adopting fd: Int32, queue: DispatchQueue, maxQueuedBytes: Int) {
        self.descriptor = SourcedDescriptor(fd)
        self.queue = queue
        self.output = OutputQueue(limit: maxQueuedBytes)
    }

    /// Connects without blocking. A listener whose backlog is full fails with EAGAIN rather
    /// than stalling the VM's queue; callers retry later, as they do for a missing socket.
    public static func connect(
        toPath path: String, queue: DispatchQueue, maxQueuedBytes: Int
    ) throws(SocketError) -> UnixStreamConnection {
        let fd = try StreamSocketCalls.makeSocket(for: path)
        let failure: SocketError?
        do {
            failure = try StreamSocketCalls.withAddress(of: path) {
                Glibc.connect(fd, $0, $1) == 0 ? nil : SocketError.lastError("connect(\(path))")
            }
        } catch {
            failure = error
        }
        if let failure {
            _ = Glibc.close(fd)
            throw failure
        }
        return UnixStreamConnection(adopting: fd, queue: queue, maxQueuedBytes: maxQueuedBytes)
    }

    deinit {
        // Only reachable while idle (started connections hold themselves) or once closed.
        if state != .closed {
            StreamSocketCalls.closeAll(output.removeAll())
            descriptor.release()
        }
    }

    /// Starts reading. Sending works before this too.
    public func start() {
        assertOnQueue()
        guard state == .idle else { return }
        state = .started
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        descriptor.retainForSource()
        let descriptor = self.descriptor
        source.setEventHandler { [self] in
            if let readSource { readSourceFired(announced: readSource.data) }
        }
        source.setCancelHandler { descriptor.release() }
        readSource = source
        source.activate()
    }

    /// Closes now, dropping queued output; `onClose(.local)`.
    public func close() {
        assertOnQueue()
        shutDown(.local)
    }

    public func peerCredentials() -> PeerCredentials? {
        guard isOpen else { return nil }
        return PeerCredentials.of(socket: fd)
    }

    /// The one way a connection closes: stop both sources, drop queued output, tell the
    /// owner, then let go of the descriptor (it closes when the last cancel handler has run).
    func shutDown(_ reason: ConnectionCloseReason) {
        guard state != .closed else { return }
        state = .closed
        if let readSource {
            readSource.cancel()
            // As for the write source below: a suspended source must be resumed to be released.
            if readSourceSuspended { readSource.resume() }
            readSourceSuspended = false
            self.readSource = nil
        }
        if let writeSource {
            writeSource.cancel()
            // A suspended source never runs its cancel handler (the descriptor would leak)
            // and crashes when released; resuming balances `disarmWriteSource`'s suspend.
            if !writeSourceArmed { writeSource.resume() }
            writeSourceArmed = false
            self.writeSource = nil
        }
        StreamSocketCalls.closeAll(output.removeAll())
        let handler = onClose
        // The handlers usually capture the connection's owner; drop them to break the cycle.
        onRead = nil
        onClose = nil
        onControlTruncated = nil
        onEndOfInput = nil
        onReadResumed = nil
        handler?(reason)
        descriptor.release()
    }

    func assertOnQueue() {
        // dispatchPrecondition costs a lookup per call; check in debug builds only.
        assert({ dispatchPrecondition(condition: .onQueue(queue)); return true }())
    }
}
