import Glibc

/// Cuts the bytes read from QEMU's log file into lines for `QEMUTraceLine.parse`.
///
/// QEMU flushes after every message (`qemu_log_unlock` calls `fflush`), so a read
/// normally ends on a line end, but a read racing a write can stop mid-line: the tail is
/// kept for the next feed. Unlike QMP framing, a bad line here must not end anything: a
/// line longer than `maximumLineLength` (no trace line we parse comes near it) is dropped
/// up to its line end and counted, and reading goes on.
public struct TraceLogLineSplitter: Sendable {
    public static let maximumLineLength = 4096

    private var partial: [UInt8] = []
    private var discarding = false
    /// Lines dropped for being too long, for the log.
    public private(set) var droppedLines = 0

    public init() {}

    /// Bytes fed that no line has taken yet (a partial line kept for the next feed).
    public var pendingBytes: Int { partial.count }

    /// Calls `emit` with each complete line, without its `\n`.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let all = UnsafeBufferPointer(start: base, count: bytes.count)
        var start = 0
        while start < all.count, let found = memchr(base + start, 0x0A, all.count - start) {
            let newline = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            if discarding {
                discarding = false
            } else if partial.isEmpty && newline - start <= Self.maximumLineLength {
                emit(UnsafeBufferPointer(rebasing: all[start..<newline]))
            } else if partial.count + (newline - start) <= Self.maximumLineLength {
                partial.append(contentsOf: all[start..<newline])
                partial.withUnsafeBufferPointer { emit($0) }
            } else {
                droppedLines += 1
            }
            partial.removeAll(keepingCapacity: true)
            start = newline + 1
        }
        guard start < all.count, !discarding else { return }
        if partial.count + (all.count - start) > Self.maximumLineLength {
            partial.removeAll()
            discarding = true
            droppedLines += 1
        } else {
            partial.append(contentsOf: all[start...])
        }
    }

    /// The lines in `bytes`, copied: for tests and callers that are not hot.
    public mutating func lines(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        bytes.withUnsafeBytes { feed($0) { lines.append(Array($0)) } }
        return lines
    }

    /// Forgets a partial line, e.g. when the broker switches QEMU to a new log file.
    public mutating func reset() {
        partial.removeAll()
        discarding = false
    }
}
