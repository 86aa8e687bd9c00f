/// A record from a perf event's ring buffer, for events opened with
/// `sample_type = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
/// PERF_SAMPLE_REGS_USER` (the layout of `PERF_RECORD_SAMPLE` in <linux/perf_event.h>:
/// the fields in that bit order, then `abi` and one u64 per bit of `sample_regs_user`,
/// lowest bit first). Only samples and lost-record notices matter here.
package enum PerfSampleRecord: Equatable, Sendable {
    package struct Sample: Equatable, Sendable {
        /// The event's id (`PERF_EVENT_IOC_ID`): which probe fired when several share a ring.
        package let eventID: UInt64
        package let pid: Int32
        package let threadID: Int32
        /// `local_clock()` nanoseconds: orders samples from different rings.
        package let time: UInt64
        /// The sampled user registers, by `perf_event_x86_regs` number; empty when the
        /// kernel could not take them (`abi` 0, e.g. a kernel thread).
        package let registers: [Int: UInt64]
    }

    case sample(Sample)
    /// `PERF_RECORD_LOST`: the ring was full and the kernel dropped this many samples.
    case lost(count: UInt64)
    /// Any other record type (none is expected for these events).
    case other(type: UInt32)

    package static let sampleType: UInt64 = 1 << 16 | 1 << 1 | 1 << 2 | 1 << 12  // IDENTIFIER, TID, TIME, REGS_USER
    static let recordLost: UInt32 = 2
    static let recordSample: UInt32 = 9

    /// The size of the record starting at `bytes`' first index (its header's `size`), or
    /// nil when fewer than 8 bytes are there.
    package static func size(ofRecordAt bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= 8 else { return nil }
        return Int(LittleEndianBytes(bytes).u16(at: 6))
    }

    /// Decodes one whole record; `registerMask` is the `sample_regs_user` it was opened with.
    package static func decode(_ bytes: ArraySlice<UInt8>, registerMask: UInt64) -> PerfSampleRecord? {
        let reader = LittleEndianBytes(bytes)
        guard bytes.count >= 8 else { return nil }
        let type = reader.u32(at: 0), size = Int(reader.u16(at: 6))
        guard size <= bytes.count else { return nil }
        switch type {
        case recordSample:
            guard size >= 8 + 8 + 8 + 8 + 8 else { return nil }
            let abi = reader.u64(at: 32)
            var registers: [Int: UInt64] = [:]
            if abi != 0 {
                var at = 40
                for bit in 0..<64 where registerMask & (1 << UInt64(bit)) != 0 {
                    guard at + 8 <= size else { return nil }
                    registers[bit] = reader.u64(at: at)
                    at += 8
                }
            }
            return .sample(Sample(eventID: reader.u64(at: 8), pid: Int32(bitPattern: reader.u32(at: 16)),
                                  threadID: Int32(bitPattern: reader.u32(at: 20)), time: reader.u64(at: 24),
                                  registers: registers))
        case recordLost:
            return .lost(count: reader.u64(at: 16))
        default:
            return .other(type: type)
        }
    }
}

/// A sample of a tracepoint event opened with `sample_type = PERF_SAMPLE_IDENTIFIER |
/// PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW`: the raw record is the
/// tracepoint's fields as the kernel filled them at the hit (its tracefs `format`).
package struct PerfRawSample: Equatable, Sendable {
    package let eventID: UInt64
    package let time: UInt64
    package let raw: [UInt8]

    package static let sampleType: UInt64 = 1 << 16 | 1 << 1 | 1 << 2 | 1 << 10  // IDENTIFIER, TID, TIME, RAW

    /// The event id of the sample record at `bytes` (PERF_SAMPLE_IDENTIFIER puts it first,
    /// whatever else the event samples), nil for other records: tells which layout to read.
    package static func eventID(ofRecord bytes: ArraySlice<UInt8>) -> UInt64? {
        let reader = LittleEndianBytes(bytes)
        guard bytes.count >= 16, reader.u32(at: 0) == PerfSampleRecord.recordSample else { return nil }
        return reader.u64(at: 8)
    }

    package static func decode(_ bytes: ArraySlice<UInt8>) -> PerfRawSample? {
        let reader = LittleEndianBytes(bytes)
        guard bytes.count >= 36, reader.u32(at: 0) == PerfSampleRecord.recordSample else { return nil }
        let size = min(Int(reader.u16(at: 6)), bytes.count)
        let rawSize = Int(reader.u32(at: 32))
        guard 36 + rawSize <= size else { return nil }
        let start = bytes.startIndex + 36
        return PerfRawSample(eventID: reader.u64(at: 8), time: reader.u64(at: 24), raw: Array(bytes[start..<start + rawSize]))
    }
}
