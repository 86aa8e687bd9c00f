import Glibc
import LinkResetTrace
import QMPBroker
import QMPWire

/// Tails the broker-owned regular file QEMU logs into, woken by inotify (IN_MODIFY), the
/// way the broker is meant to: QEMU never waits for this reader.
final class TraceLogFollower {
    private let fileFD: Int32
    private let notifyFD: Int32
    private var splitter = LineSplitter.traceLog
    private var parsed: [QEMUTraceLine] = []
    /// Every line read so far, parsed or not, for failure messages.
    private(set) var rawLines: [String] = []

    init(path: String) throws {
        fileFD = open(path, O_RDONLY | O_CLOEXEC)
        notifyFD = inotify_init1(Int32(O_NONBLOCK | O_CLOEXEC))
        guard fileFD >= 0, notifyFD >= 0, inotify_add_watch(notifyFD, path, UInt32(IN_MODIFY)) >= 0 else {
            throw QMPClient.Failure("cannot follow \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        close(fileFD)
        close(notifyFD)
    }

    /// The next parsed line, or nil when `timeout` passes first.
    func next(timeout: Double) -> QEMUTraceLine? {
        let deadline = Deadline(after: timeout)
        while parsed.isEmpty {
            if readAvailable() > 0 { continue }
            var poller = pollfd(fd: notifyFD, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, Int32((deadline.remaining * 1000).rounded(.up))) <= 0 { return nil }
            var events = [UInt8](repeating: 0, count: 4096)
            _ = read(notifyFD, &events, events.count)
        }
        return parsed.removeFirst()
    }

    /// The next parsed line matching `predicate`, skipping others.
    func next(timeout: Double, where predicate: (QEMUTraceLine.Event) -> Bool) -> QEMUTraceLine? {
        let deadline = Deadline(after: timeout)
        while let line = next(timeout: deadline.remaining) {
            if predicate(line.event) { return line }
        }
        return nil
    }

    func nextConfigWrite(timeout: Double = 5) -> PCIConfigAccess? {
        guard case .configWrite(let access)? = next(timeout: timeout, where: {
            if case .configWrite = $0 { true } else { false }
        })?.event else { return nil }
        return access
    }

    /// Reads what QEMU appended since the last call; returns the byte count.
    private func readAvailable() -> Int {
        var chunk = [UInt8](repeating: 0, count: 65536)
        var total = 0
        while true {
            let count = read(fileFD, &chunk, chunk.count)
            guard count > 0 else { return total }
            total += count
            chunk.withUnsafeBytes { bytes in
                splitter.feed(UnsafeRawBufferPointer(rebasing: bytes[..<count])) { line in
                    let line = line.withoutLineEnd
                    rawLines.append(String(decoding: line, as: UTF8.self))
                    if let traceLine = QEMUTraceLine.parse(line) { parsed.append(traceLine) }
                }
            }
        }
    }
}
