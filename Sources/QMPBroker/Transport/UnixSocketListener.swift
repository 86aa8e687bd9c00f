import Dispatch
import Glibc

/// A listening unix stream socket that hands each accepted descriptor to `onAccept` on `queue`.
///
/// `close()` may be called from any thread (it only cancels the source and unlinks the path);
/// dropping the last reference closes it too.
/// `@unchecked Sendable`: the accept source runs on `queue`; `close()` from another
/// thread only cancels that source, which Dispatch allows from any thread.
public final class UnixSocketListener: @unchecked Sendable {
    public let path: String
    private let source: DispatchSourceRead
    /// The socket file this listener created, so that `close()` never unlinks a file that
    /// someone else has since put at the same path.
    private let socketFile: FileIdentity

    /// Binds (removing a stale socket file), chmods to `mode`, listens, and calls onAccept on
    /// `queue` with each accepted fd (non-blocking, CLOEXEC). A socket file that a live process
    /// still listens on is not removed: that fails with EADDRINUSE.
    public init(path: String, mode: UInt32, queue: DispatchQueue, onAccept: @escaping (Int32) -> Void) throws(SocketError) {
        self.path = path
        let fd = try StreamSocketCalls.makeSocket(for: path)
        do {
            socketFile = try Self.bindAndListen(fd, path: path, mode: mode)
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
        let acceptor = Acceptor(fd: fd, queue: queue, onAccept: onAccept)
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        acceptor.source = source
        source.setEventHandler { acceptor.acceptPending() }
        // Dispatch's rule: close a watched descriptor only once its source is cancelled.
        source.setCancelHandler { _ = Glibc.close(fd) }
        source.activate()
    }

    deinit { close() }

    /// Stops accepting and unlinks the path. Idempotent.
    public func close() {
        source.cancel()
        if FileIdentity(path: path) == socketFile { _ = unlink(path) }
    }

    private static func bindAndListen(_ fd: Int32, path: String, mode: UInt32) throws(SocketError) -> FileIdentity {
        try removeStaleSocket(at: path)
        let bound = try StreamSocketCalls.withAddress(of: path) { bind(fd, $0, $1) }
        guard bound == 0 else { throw SocketError.lastError("bind(\(path))") }
        // chmod before listen: until listen, connecting fails anyway, so no client ever
        // reaches the socket under the umask's permissions.
        guard chmod(path, mode_t(mode)) == 0 else { throw unlinking(path, SocketError.lastError("chmod(\(path))")) }
        guard listen(fd, SOMAXCONN) == 0 else { throw unlinking(path, SocketError.lastError("listen(\(path))")) }
        guard let identity = FileIdentity(path: path) else { throw unlinking(path, SocketError.lastError("stat(\(path))")) }
        return identity
    }

    /// Removes the half-set-up socket file, keeping the error that made us give up.
    private static func unlinking(_ path: String, _ failure: SocketError) -> SocketError {
        _ = unlink(path)
        return failure
    }

    /// A socket file nobody listens on is left behind by a crash; remove it so bind succeeds.
    /// Anything else (a live socket, a regular file) is left alone.
    private static func removeStaleSocket(at path: String) throws(SocketError) {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else { return }
        let probe = try StreamSocketCalls.makeSocket(for: path)
        defer { _ = Glibc.close(probe) }
        let (connected, code) = try StreamSocketCalls.withAddress(of: path) { (Glibc.connect(probe, $0, $1), Glibc.errno) }
        if connected == 0 || StreamSocketCalls.isWouldBlock(code) {
            // Accepting, or with a full backlog: someone is serving this path.
            throw SocketError(operation: "bind(\(path))", errno: EADDRINUSE)
        }
        if code == ECONNREFUSED { _ = unlink(path) }
    }
}

/// Accepts on the listener's queue; separate from the listener so the source's handler does
/// not keep the listener alive (dropping the listener closes it).
/// `@unchecked Sendable`: captured by the accept source and used only on its queue.
private final class Acceptor: @unchecked Sendable {
    /// Bounds one turn on the queue so a connection storm cannot starve the VM's other sockets.
    static let maxAcceptsPerTurn = 64
    /// How long to stop accepting when out of descriptors: the listen socket stays readable,
    /// so without a pause every event would spin.
    static let exhaustedPause = DispatchTimeInterval.milliseconds(100)

    let fd: Int32
    let queue: DispatchQueue
    let onAccept: (Int32) -> Void
    var source: DispatchSourceRead?

    init(fd: Int32, queue: DispatchQueue, onAccept: @escaping (Int32) -> Void) {
        self.fd = fd
        self.queue = queue
        self.onAccept = onAccept
    }

    func acceptPending() {
        guard let source else { return }
        for _ in 0..<Self.maxAcceptsPerTurn {
            if source.isCancelled { return }
            let client = StreamSocketCalls.accept(fd)
            if client >= 0 {
                onAccept(client)
                continue
            }
            switch Glibc.errno {
            case EINTR, ECONNABORTED, EPROTO:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Suspended and resumed by this block alone, so the pair is always balanced,
                // even if the listener is closed in between (cancel completes on resume).
                source.suspend()
                queue.asyncAfter(deadline: .now() + Self.exhaustedPause) { [self] in self.source?.resume() }
                return
            default:
                // EAGAIN: drained. Anything else is not retried until the next event.
                return
            }
        }
    }
}

/// Which file a path names (device and inode), to tell "our" socket file from a replacement.
private struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}
