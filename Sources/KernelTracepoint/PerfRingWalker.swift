/// Walks the records a perf ring buffer holds between the reader's tail and the kernel's
/// head (include/uapi/linux/perf_event.h: the data area after the control page; `data_head`
/// and `data_tail` count bytes ever written and read, positions are taken modulo the
/// area's size, a power of two). Each record starts with `perf_event_header`
/// (u32 type, u16 misc, u16 size including the header) and may wrap around the end.
///
/// Pure: it reads bytes it is given. A record that wraps is copied into a scratch buffer
/// kept across calls (it grows to the largest wrapped record once); others are handed
/// out in place, with no allocation.
package struct PerfRingWalker {
    package static let headerSize = 8
    /// `PERF_RECORD_LOST`: the kernel dropped records because the ring was full.
    package static let recordLost: UInt32 = 2
    /// `PERF_RECORD_SAMPLE`: one sample, here one tracepoint hit.
    package static let recordSample: UInt32 = 9

    private var scratch: [UInt8] = []

    package init() {}

    /// What one walk read.
    package struct Walk: Hashable, Sendable {
        /// The tail to publish: after the last whole record, or `head` when the ring held
        /// garbage (then everything up to head is given up).
        package let tail: UInt64
        /// A header with an impossible size was met; the rest was skipped.
        package let corrupt: Bool

        package init(tail: UInt64, corrupt: Bool) {
            self.tail = tail
            self.corrupt = corrupt
        }
    }

    /// Calls `body` with each whole record in `ring` from `tail` to `head`. The record's
    /// bytes are valid only during the call.
    package mutating func walk(_ ring: UnsafeRawBufferPointer, tail: UInt64, head: UInt64,
                              _ body: (PerfRecord) -> Void) -> Walk {
        let size = UInt64(ring.count)
        guard size > 0, size & (size - 1) == 0, head >= tail, head - tail <= size else {
            return Walk(tail: head, corrupt: size > 0 && head != tail)
        }
        var position = tail
        while head - position >= UInt64(Self.headerSize) {
            let start = Int(position & (size - 1))
            let header = withContiguous(ring, from: start, count: Self.headerSize) { bytes in
                (type: bytes.loadUnaligned(as: UInt32.self),
                 misc: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self),
                 size: Int(bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)))
            }
            guard header.size >= Self.headerSize else { return Walk(tail: head, corrupt: true) }
            // The kernel publishes head only after whole records: a record longer than
            // what is left is a torn write we must not read yet.
            guard UInt64(header.size) <= head - position else { break }
            withContiguous(ring, from: start, count: header.size) { bytes in
                body(PerfRecord(type: header.type, misc: header.misc,
                                body: UnsafeRawBufferPointer(rebasing: bytes[Self.headerSize...])))
            }
            position += UInt64(header.size)
        }
        return Walk(tail: position, corrupt: false)
    }

    /// `count` bytes of the ring from `start`, in place when they do not wrap, else copied.
    private mutating func withContiguous<Result>(_ ring: UnsafeRawBufferPointer, from start: Int, count: Int,
                                                 _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        if start + count <= ring.count {
            return body(UnsafeRawBufferPointer(rebasing: ring[start..<(start + count)]))
        }
        let first = ring.count - start
        if scratch.count < count { scratch = [UInt8](repeating: 0, count: count) }
        return scratch.withUnsafeMutableBytes { buffer in
            buffer.baseAddress!.copyMemory(from: ring.baseAddress! + start, byteCount: first)
            (buffer.baseAddress! + first).copyMemory(from: ring.baseAddress!, byteCount: count - first)
            return body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }
}

/// One record of a perf ring, header split off.
package struct PerfRecord {
    package let type: UInt32
    package let misc: UInt16
    package let body: UnsafeRawBufferPointer

    /// A `PERF_RECORD_SAMPLE` taken with `sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_RAW`
    /// is `u64 time; u32 size; char data[size]`: when the kernel took it (in the clock the
    /// event was opened with) and the tracepoint's raw record (padded to 8 bytes).
    package var timedRawSample: (nanoseconds: UInt64, raw: UnsafeRawBufferPointer)? {
        guard type == PerfRingWalker.recordSample, body.count >= 12 else { return nil }
        let time = body.loadUnaligned(as: UInt64.self)
        let size = Int(body.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard size <= body.count - 12 else { return nil }
        return (time, UnsafeRawBufferPointer(rebasing: body[12..<(12 + size)]))
    }

    /// A `PERF_RECORD_LOST` is `u64 id; u64 lost`: how many records the kernel dropped.
    package var lostCount: UInt64? {
        guard type == PerfRingWalker.recordLost, body.count >= 16 else { return nil }
        return body.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
    }
}
