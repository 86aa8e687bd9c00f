import EventLoop
import Glibc

/// A listening unix stream socket on an event loop; it hands each accepted descriptor to
/// `onAccept` on the loop's thread. Loop-confined; `close()` (or dropping the last
/// reference once closed) stops accepting and unlinks the path.
package final class UnixSocketListener {
    package let path: String
    private let descriptor: WatchedDescriptor
    private let onAccept: (Int32) -> Void
    /// The socket file this listener created, so that `close()` never unlinks a file that
    /// someone else has since put at the same path.
    private let socketFile: FileIdentity
    private var pauseTimer: TimerQueue<() -> Void>.ID?

    /// Bounds one wakeup so a connection storm cannot starve the VM's other sockets.
    static let maxAcceptsPerTurn = 64
    /// How long to stop accepting when out of descriptors: the listen socket stays readable,
    /// so without a pause every wakeup would spin.
    static let exhaustedPauseMilliseconds = 100

    /// Binds (removing a stale socket file), chmods to `mode`, listens, and calls onAccept on
    /// the loop with each accepted fd (non-blocking, CLOEXEC). A socket file that a live
    /// process still listens on is not removed: that fails with EADDRINUSE. Call on the loop.
    package init(path: String, mode: UInt32, loop: EventLoop, onAccept: @escaping (Int32) -> Void) throws(SystemCallError) {
        self.path = path
        let fd = try StreamSocketCalls.makeSocket(for: path)
        do {
            socketFile = try Self.bindAndListen(fd, path: path, mode: mode)
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
        self.onAccept = onAccept
        descriptor = WatchedDescriptor(adopting: fd, loop: loop)
        descriptor.onReady = { [unowned self] _ in acceptPending() }
        do {
            try descriptor.setInterest(.read)
        } catch {
            close()
            throw SystemCallError("epoll_ctl(\(path))", errno: error.errno)
        }
    }

    deinit { close() }

    /// Stops accepting and unlinks the path. Idempotent.
    package func close() {
        if let pauseTimer { descriptor.loop.cancel(pauseTimer) }
        pauseTimer = nil
        guard descriptor.isOpen else { return }
        descriptor.close()
        if FileIdentity(path: path) == socketFile { _ = unlink(path) }
    }

    private func acceptPending() {
        for _ in 0..<Self.maxAcceptsPerTurn {
            guard descriptor.isOpen else { return }
            let client = StreamSocketCalls.accept(descriptor.fd)
            if client >= 0 {
                onAccept(client)
                continue
            }
            switch Glibc.errno {
            case EINTR, ECONNABORTED, EPROTO:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                try? descriptor.setInterest([])
                pauseTimer = descriptor.loop.schedule(afterMilliseconds: Self.exhaustedPauseMilliseconds) { [weak self] in
                    guard let self else { return }
                    pauseTimer = nil
                    try? descriptor.setInterest(.read)
                }
                return
            default:
                // EAGAIN: drained. Anything else is not retried until the next event.
                return
            }
        }
    }

    private static func bindAndListen(_ fd: Int32, path: String, mode: UInt32) throws(SystemCallError) -> FileIdentity {
        try removeStaleSocket(at: path)
        let bound = try UnixSocketAddress.with(path) { bind(fd, $0, $1) }
        guard bound == 0 else { throw SystemCallError.last("bind(\(path))") }
        // chmod before listen: until listen, connecting fails anyway, so no client ever
        // reaches the socket under the umask's permissions.
        guard chmod(path, mode_t(mode)) == 0 else { throw unlinking(path, SystemCallError.last("chmod(\(path))")) }
        guard listen(fd, SOMAXCONN) == 0 else { throw unlinking(path, SystemCallError.last("listen(\(path))")) }
        guard let identity = FileIdentity(path: path) else { throw unlinking(path, SystemCallError.last("stat(\(path))")) }
        return identity
    }

    /// Removes the half-set-up socket file, keeping the error that made us give up.
    private static func unlinking(_ path: String, _ failure: SystemCallError) -> SystemCallError {
        _ = unlink(path)
        return failure
    }

    /// A socket file nobody listens on is left behind by a crash; remove it so bind succeeds.
    /// Anything else (a live socket, a regular file) is left alone.
    private static func removeStaleSocket(at path: String) throws(SystemCallError) {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else { return }
        let probe = try StreamSocketCalls.makeSocket(for: path)
        defer { _ = Glibc.close(probe) }
        let (connected, code) = try UnixSocketAddress.with(path) { (Glibc.connect(probe, $0, $1), Glibc.errno) }
        if connected == 0 || StreamSocketCalls.isWouldBlock(code) {
            // Accepting, or with a full backlog: someone is serving this path.
            throw SystemCallError("bind(\(path))", errno: EADDRINUSE)
        }
        if code == ECONNREFUSED { _ = unlink(path) }
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
