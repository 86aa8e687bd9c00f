import Dispatch
import Glibc

extension UnixStreamConnection {
    /// Reads per turn on the queue before yielding to other sockets (16 × 64 KiB = 1 MiB).
    static let maxReadsPerTurn = 16

    /// The read source's handler. `announced` is the source's `data`: the bytes the socket
    /// held when the event fired, and 0 when libdispatch reports a hangup.
    func readSourceFired(announced: UInt) {
        readAvailable(announced: announced == 0 ? nil : Int(clamping: announced))
    }

    /// Reads until the announced bytes are in (or, with no announcement, until the socket is
    /// drained), the peer closes, or the turn's budget is spent.
    ///
    /// Stopping early is only safe while libdispatch keeps watching the descriptor. On a
    /// hangup (EPOLLHUP) it delivers one last event, with data 0, and stops watching: bytes
    /// left unread then would never be delivered. So a hangup, or a continuation after the
    /// budget ran out, reads until EAGAIN or end of file; an ordinary event stops once it
    /// has what was announced and a read came back short, saving a syscall that would only
    /// return EAGAIN (anything arriving later fires the source again).
    func readAvailable(announced: Int?) {
        ThreadReceiveBuffer.withBuffers { buffers in
            var total = 0
            for _ in 0..<Self.maxReadsPerTurn {
                guard state == .started, !readPaused else { return }
                let received = StreamSocketCalls.receive(fd, into: buffers)
                if received.count > 0 {
                    deliver(UnsafeRawBufferPointer(rebasing: buffers.data[..<received.count]),
                            fds: received.fds, controlTruncated: received.controlTruncated)
                    total += received.count
                    if let announced, total >= announced, received.count < buffers.data.count { return }
                    continue
                }
                if received.count == 0 {
                    StreamSocketCalls.closeAll(received.fds)
                    endOfInput()
                    return
                }
                let code = Glibc.errno
                if StreamSocketCalls.isWouldBlock(code) { return }
                if code == EINTR { continue }
                shutDown(StreamSocketCalls.closeReason(forErrno: code))
                return
            }
            // Budget spent with data possibly left: go on after other work on the queue, and
            // drain fully then (the source may not fire again, see above).
            queue.async { [self] in
                if state == .started && !readPaused { readAvailable(announced: nil) }
            }
        }
    }

    /// Stops reading until the queued output has drained below half the threshold.
    public func pauseReading() {
        assertOnQueue()
        guard state == .started, !readPaused else { return }
        readPaused = true
        if let readSource, !readSourceSuspended {
            readSourceSuspended = true
            readSource.suspend()
        }
    }

    /// After output was taken by the kernel: resume reading once the queue is low enough.
    func resumeReadingIfDrained() {
        guard readPaused, output.byteCount <= (readPauseThreshold ?? 0) / 2 else { return }
        readPaused = false
        onReadResumed?()
        guard state == .started, !readPaused else { return }
        if let readSource, readSourceSuspended {
            readSourceSuspended = false
            readSource.resume()
        }
        // A hangup seen before the pause is not announced again: drain until EAGAIN once.
        queue.async { [self] in
            if state == .started && !readPaused { readAvailable(announced: nil) }
        }
    }

    /// EOF: close, or stop reading and let the owner finish (see `onEndOfInput`).
    private func endOfInput() {
        guard let handler = onEndOfInput else {
            shutDown(.peerClosed)
            return
        }
        state = .inputEnded
        readSource?.cancel()
        readSource = nil
        handler()
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer, fds: [Int32], controlTruncated: Bool) {
        var fds = fds
        if controlTruncated {
            // Some descriptors were dropped by the kernel; a partial set would be worse
            // than none (the command would act on the wrong ones), so drop them all.
            StreamSocketCalls.closeAll(fds)
            fds = []
            onControlTruncated?()
            guard state == .started else { return }
        }
        if let onRead {
            onRead(bytes, fds)
        } else {
            StreamSocketCalls.closeAll(fds)
        }
    }
}
