import EventLoop
import Glibc

extension UnixStreamConnection {
    /// Reads per wakeup before letting the loop serve other sockets (16 × 64 KiB = 1 MiB);
    /// epoll is level-triggered, so what is left is reported at the next wait.
    static let maxReadsPerTurn = 16

    /// Reads until the socket is drained (a short read), the peer closes, or the turn's
    /// budget is spent. A short read may also end at a message that carries descriptors
    /// (recvmsg stops there): the level-triggered loop reports the rest at once.
    func readAvailable() {
        ThreadReceiveBuffer.withBuffers { buffers in
            for _ in 0..<Self.maxReadsPerTurn {
                guard state == .started, !readPaused else { return }
                let received = StreamSocketCalls.receive(fd, into: buffers)
                if received.count > 0 {
                    deliver(UnsafeRawBufferPointer(rebasing: buffers.data[..<received.count]),
                            fds: received.fds, controlTruncated: received.controlTruncated)
                    if received.count < buffers.data.count { return }
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
        }
    }

    /// Stops reading until the queued output has drained below half the threshold.
    package func pauseReading() {
        loop.assertInLoop()
        guard state == .started, !readPaused else { return }
        readPaused = true
        updateInterest()
    }

    /// After output was taken by the kernel: resume reading once the queue is low enough.
    func resumeReadingIfDrained() {
        guard readPaused, output.byteCount <= (readPauseThreshold ?? 0) / 2 else { return }
        readPaused = false
        onReadResumed?()
        guard state == .started, !readPaused else { return }
        updateInterest()
    }

    /// EOF: close, or stop reading and let the owner finish (see `onEndOfInput`).
    private func endOfInput() {
        guard let handler = onEndOfInput else {
            shutDown(.peerClosed)
            return
        }
        state = .inputEnded
        updateInterest()
        handler()
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer, fds: [Int32], controlTruncated: Bool) {
        var fds = fds
        if controlTruncated {
            // Some descriptors were dropped by the kernel; a partial set would be worse
            // than none (the command would act on the wrong ones), so drop them all.
            StreamSocketCalls.closeAll(fds)
            fds = []
        }
        if let onRead {
            onRead(bytes, fds)
        } else {
            StreamSocketCalls.closeAll(fds)
        }
    }
}
