import Glibc

extension UnixStreamConnection {
    /// Queues bytes (with fds passed in the same sendmsg as the first byte). Takes ownership of
    /// `fds` (closed once sent, or on close).
    ///
    /// Writes immediately when nothing is queued; on EAGAIN queues and watches for writing.
    /// Returns false (and closes with .outputOverflow) when queued bytes would exceed
    /// maxQueuedBytes. `bytes` is kept, not copied, until the kernel has taken it.
    /// Empty `bytes` sends nothing; descriptors need a byte to ride on, so they are closed.
    ///
    /// `requested` output (a reply to what the peer sent) is queued past the bound: the
    /// peer is slowed by `readPauseThreshold` instead, so a peer that reads is never cut
    /// off; only unsolicited output (events) can overflow.
    @discardableResult
    package func send(_ bytes: [UInt8], fds: [Int32] = [], requested: Bool = false) -> Bool {
        loop.assertInLoop()
        guard state != .closed else {
            StreamSocketCalls.closeAll(fds)
            return false
        }
        guard !bytes.isEmpty else {
            StreamSocketCalls.closeAll(fds)
            return true
        }
        // Anything already queued must go first; the socket is watched and will send it.
        // A corked connection queues too, and sends everything at `uncork`.
        guard output.isEmpty && !corked else { return enqueue(bytes[...], fds: fds, requested: requested) }

        let sent = bytes.withUnsafeBytes { StreamSocketCalls.send(fd, $0, fds: fds) }
        if sent == bytes.count {
            StreamSocketCalls.closeAll(fds)
            return true
        }
        if sent > 0 {
            // The descriptors went with the first byte; the kernel holds its own references.
            StreamSocketCalls.closeAll(fds)
            return enqueue(bytes[sent...], fds: [], requested: requested)
        }
        let code = Glibc.errno
        if StreamSocketCalls.isWouldBlock(code) || code == EINTR {
            return enqueue(bytes[...], fds: fds, requested: requested)
        }
        StreamSocketCalls.closeAll(fds)
        shutDown(StreamSocketCalls.closeReason(forErrno: code))
        return false
    }

    private func enqueue(_ bytes: ArraySlice<UInt8>, fds: [Int32], requested: Bool) -> Bool {
        let wasEmpty = output.isEmpty
        guard output.append(bytes, fds: fds, bounded: !requested) else {
            StreamSocketCalls.closeAll(fds)
            shutDown(.outputOverflow)
            return false
        }
        // A corked queue is written at `uncork`: watching for writability meanwhile would
        // cost two `epoll_ctl`s per batch.
        if wasEmpty && !corked { updateInterest() }
        if let readPauseThreshold, output.byteCount > readPauseThreshold { pauseReading() }
        return true
    }

    /// On writable: sends queued chunks until the queue is empty or the
    /// socket is full again.
    func flushQueued() {
        while state != .closed && !output.isEmpty {
            let (sent, attempted) = sendQueuedChunks()
            if sent < 0 {
                let code = Glibc.errno
                if StreamSocketCalls.isWouldBlock(code) { return }
                if code == EINTR { continue }
                shutDown(StreamSocketCalls.closeReason(forErrno: code))
                return
            }
            StreamSocketCalls.closeAll(output.consume(sent))
            resumeReadingIfDrained()
            // A short write means the socket buffer is full: wait for the next event
            // instead of spending a syscall on EAGAIN.
            if sent < attempted { return }
        }
        if state != .closed {
            updateInterest()
            if closeWhenFlushed { shutDown(.local) }
        }
    }

    /// Holds output back until `uncork()`: the many events of one VMM read then leave in
    /// one `sendmsg` per client instead of one per event.
    package func cork() {
        corked = true
    }

    package func uncork() {
        guard corked else { return }
        corked = false
        guard state != .closed, !output.isEmpty else { return }
        flushQueued()
        updateInterest()
    }

    /// Closes once everything queued has been written (the reply to a client that
    /// half-closed still reaches it); at once when nothing is queued.
    package func closeAfterFlushing() {
        loop.assertInLoop()
        guard state != .closed else { return }
        if output.isEmpty {
            shutDown(.local)
        } else {
            closeWhenFlushed = true
        }
    }

    /// In its own function so that the slice of the queue is gone before `consume` mutates
    /// the queue (a live slice would make that copy the chunk array).
    private func sendQueuedChunks() -> (sent: Int, attempted: Int) {
        let chunks = output.sendableChunks(maxChunks: StreamSocketCalls.maxChunksPerSend)
        let attempted = chunks.reduce(0) { $0 + $1.bytes.count }
        return (StreamSocketCalls.send(fd, chunks), attempted)
    }
}
