import Glibc

/// Cuts a byte stream into `\n`-ended lines: the VMM's QMP output (QEMU ends every
/// message with `\r\n` and escapes newlines inside strings, so a line is a message) and
/// QEMU's trace log (one trace line per line).
///
/// A read can stop mid-line: the tail is kept for the next feed. A line longer than
/// `maximumLineLength` (without its `\n`) is dropped up to its line end and counted in
/// `droppedLines`; reading goes on. Whether a dropped line ends anything is the caller's
/// choice (a QMP peer that sends one is not a QMP server; a trace log just goes on).
package struct LineSplitter: Sendable {
    package let maximumLineLength: Int

    private var partial: [UInt8] = []
    private var discarding = false
    /// Lines dropped for being too long, for the log.
    package private(set) var droppedLines = 0

    package init(maximumLineLength: Int) {
        self.maximumLineLength = maximumLineLength
    }

    /// Bytes fed that no line has taken yet (a partial line kept for the next feed).
    package var pendingBytes: Int { partial.count }

    /// Calls `emit` with each complete line, including its `\n` (a QMP line keeps its
    /// `\r\n`, so it can be forwarded byte-for-byte).
    package mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let all = UnsafeBufferPointer(start: base, count: bytes.count)
        var start = 0
        while start < all.count, let found = memchr(base + start, 0x0A, all.count - start) {
            let newline = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            if discarding {
                discarding = false
            } else if partial.isEmpty && newline - start <= maximumLineLength {
                emit(UnsafeBufferPointer(rebasing: all[start...newline]))
            } else if partial.count + (newline - start) <= maximumLineLength {
                partial.append(contentsOf: all[start...newline])
                partial.withUnsafeBufferPointer { emit($0) }
            } else {
                droppedLines += 1
            }
            partial.removeAll(keepingCapacity: partial.count <= 4096)
            start = newline + 1
        }
        guard start < all.count, !discarding else { return }
        if partial.count + (all.count - start) > maximumLineLength {
            partial.removeAll()
            discarding = true
            droppedLines += 1
        } else {
            partial.append(contentsOf: all[start...])
        }
    }

    /// The lines in `bytes`, copied, each with its `\n`: for tests and callers that are not hot.
    package mutating func lines(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        bytes.withUnsafeBytes { feed($0) { lines.append(Array($0)) } }
        return lines
    }

    /// Forgets a partial line, e.g. on a new connection or when QEMU switches to a new log file.
    package mutating func reset() {
        partial.removeAll()
        discarding = false
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// The line without its trailing `\n`.
    package var withoutLineEnd: UnsafeBufferPointer<UInt8> {
        last == 0x0A ? UnsafeBufferPointer(rebasing: self[..<(endIndex - 1)]) : self
    }
}
