import EventLoop
import Glibc

/// Thin wrappers around the socket calls the transport makes, so the connection and
/// listener read as logic rather than pointer plumbing.
enum StreamSocketCalls {
    /// Never block (every descriptor may be shared or adopted in blocking mode) and never
    /// raise SIGPIPE: a client hanging up must not kill the broker.
    static let sendFlags = Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)
    /// Received descriptors must not leak into processes the broker might spawn.
    static let receiveFlags = Int32(MSG_CMSG_CLOEXEC) | Int32(MSG_DONTWAIT)
    static let socketType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    /// A backlog of queued chunks goes out in one `sendmsg` of up to this many iovecs.
    static let maxChunksPerSend = 64

    /// Sends `bytes`, with `fds` attached to the first of them. Returns the number of bytes
    /// the kernel took (the descriptors went with them if that is at least one), or -1 with errno set.
    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, fds: [Int32]) -> Int {
        if fds.isEmpty {
            return Glibc.send(fd, bytes.baseAddress, bytes.count, sendFlags)
        }
        var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
        return sendMessage(fd, iovecs: &vector, count: 1, fds: fds)
    }

    /// Sends queued chunks in one `sendmsg`, with the first chunk's descriptors.
    static func send(_ fd: Int32, _ chunks: ArraySlice<OutputQueue.Chunk>) -> Int {
        guard let first = chunks.first else { return 0 }
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: chunks.count) { vectors in
            fillVectors(vectors.baseAddress!, from: chunks[...], filled: 0) { count in
                sendMessage(fd, iovecs: vectors.baseAddress!, count: count, fds: first.fds)
            }
        }
    }

    /// Points one iovec at each chunk, nesting `withUnsafeBytes` so every pointer stays
    /// valid until `body` has made the call (depth is bounded by `maxChunksPerSend`).
    private static func fillVectors(
        _ vectors: UnsafeMutablePointer<iovec>, from chunks: ArraySlice<OutputQueue.Chunk>, filled: Int,
        _ body: (Int) -> Int
    ) -> Int {
        guard let chunk = chunks.first else { return body(filled) }
        return chunk.bytes.withUnsafeBytes { bytes in
            vectors[filled] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
            return fillVectors(vectors, from: chunks.dropFirst(), filled: filled + 1, body)
        }
    }

    private static func sendMessage(_ fd: Int32, iovecs: UnsafeMutablePointer<iovec>, count: Int, fds: [Int32]) -> Int {
        var message = msghdr()
        message.msg_iov = iovecs
        message.msg_iovlen = count
        if fds.isEmpty {
            return sendmsg(fd, &message, sendFlags)
        }
        let space = RightsControlMessage.space(forDescriptors: fds.count)
        return withUnsafeTemporaryAllocation(byteCount: space, alignment: MemoryLayout<cmsghdr>.alignment) { control in
            RightsControlMessage.encode(fds, into: control.baseAddress!)
            message.msg_control = control.baseAddress
            message.msg_controllen = space
            return sendmsg(fd, &message, sendFlags)
        }
    }

    /// One `recvmsg` into `buffers`. Returns the byte count (0 at end of file, -1 with errno
    /// set), the descriptors that came with the bytes, and whether the kernel had to drop
    /// some because the control buffer was full (MSG_CTRUNC).
    static func receive(_ fd: Int32, into buffers: ThreadReceiveBuffer.Buffers) -> (count: Int, fds: [Int32], controlTruncated: Bool) {
        var vector = iovec(iov_base: buffers.data.baseAddress, iov_len: buffers.data.count)
        return withUnsafeMutablePointer(to: &vector) { vectorPointer in
            var message = msghdr()
            message.msg_iov = vectorPointer
            message.msg_iovlen = 1
            message.msg_control = buffers.control.baseAddress
            message.msg_controllen = buffers.control.count
            let count = recvmsg(fd, &message, receiveFlags)
            guard count >= 0 else { return (count, [], false) }
            let truncated = message.msg_flags & Int32(MSG_CTRUNC) != 0
            guard message.msg_controllen > 0 else { return (count, [], truncated) }
            let filled = min(message.msg_controllen, buffers.control.count)
            let fds = RightsControlMessage.descriptors(in: UnsafeRawBufferPointer(rebasing: buffers.control[..<filled]))
            return (count, fds, truncated)
        }
    }

    /// A new non-blocking, close-on-exec unix stream socket.
    static func makeSocket(for path: String) throws(SystemCallError) -> Int32 {
        let fd = socket(AF_UNIX, socketType, 0)
        guard fd >= 0 else { throw SystemCallError.last("socket(\(path))") }
        return fd
    }

    /// Accepts one connection, already non-blocking and close-on-exec (no window in which a
    /// concurrent fork could inherit it). Returns -1 with errno set on failure.
    static func accept(_ listener: Int32) -> Int32 {
        accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
    }

    /// Glibc declares accept4 only under _GNU_SOURCE, which Swift's Glibc module does not
    /// define; it is in every Linux libc since 2.10, so look it up once.
    private static let accept4: @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32 = {
        guard let symbol = dlsym(nil, "accept4") else { fatalError("libc has no accept4") }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32).self)
    }()

    /// Closes descriptors this side owns and will not pass on.
    static func closeAll(_ fds: [Int32]) {
        for fd in fds { _ = Glibc.close(fd) }
    }

    static func isWouldBlock(_ code: Int32) -> Bool { code == EAGAIN || code == EWOULDBLOCK }

    /// EPIPE and ECONNRESET on a unix socket only mean the peer closed first.
    static func closeReason(forErrno code: Int32) -> ConnectionCloseReason {
        code == EPIPE || code == ECONNRESET ? .peerClosed : .error(code)
    }
}
