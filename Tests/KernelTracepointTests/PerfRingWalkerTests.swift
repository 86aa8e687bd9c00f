import KernelTracepoint
import Testing

@Suite struct PerfRingWalkerTests {
    /// What a walk handed out, as values.
    private enum Seen: Equatable {
        case raw([UInt8])
        case lost(UInt64)
        case other(UInt32)
    }

    private static let records: [[UInt8]] = [
        Fixtures.sample(Fixtures.aerRecord()),
        Fixtures.lost(3),
        Fixtures.sample(Fixtures.aerRecord(device: "0000:00:01.0", severity: 2)),
    ]

    /// `bytes` written into a ring of `size` from position `start` (modulo size).
    private static func ring(size: Int, start: Int, _ bytes: [UInt8]) -> [UInt8] {
        var ring = [UInt8](repeating: 0xAA, count: size)
        for (index, byte) in bytes.enumerated() { ring[(start + index) % size] = byte }
        return ring
    }

    private func walk(_ ring: [UInt8], tail: UInt64, head: UInt64) -> (seen: [Seen], walk: PerfRingWalker.Walk) {
        var walker = PerfRingWalker()
        var seen: [Seen] = []
        let walk = ring.withUnsafeBytes { bytes in
            walker.walk(bytes, tail: tail, head: head) { record in
                if let sample = record.timedRawSample {
                    seen.append(.raw(Array(sample.raw)))
                } else if let lost = record.lostCount {
                    seen.append(.lost(lost))
                } else {
                    seen.append(.other(record.type))
                }
            }
        }
        return (seen, walk)
    }

    private var expected: [Seen] {
        [.raw(Fixtures.aerRecord()), .lost(3), .raw(Fixtures.aerRecord(device: "0000:00:01.0", severity: 2))]
    }

    /// The records wrap around the ring's end at every possible point.
    @Test func wrapsAtEveryPoint() {
        let bytes = Self.records.flatMap { $0 }
        let size = 256
        #expect(bytes.count <= size)
        for start in 0..<size {
            // data_tail and data_head only grow: start a lap or two in.
            let tail = UInt64(2 * size + start)
            let result = walk(Self.ring(size: size, start: start, bytes), tail: tail, head: tail + UInt64(bytes.count))
            #expect(result.seen == expected, "start \(start)")
            #expect(result.walk == PerfRingWalker.Walk(tail: tail + UInt64(bytes.count), corrupt: false))
        }
    }

    /// A head anywhere inside the records: only whole ones are read, and the tail stops at
    /// the first one not whole.
    @Test func cutAtEveryPoint() {
        let bytes = Self.records.flatMap { $0 }
        let ends = Self.records.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        for cut in 0...bytes.count {
            let whole = ends.lastIndex { $0 <= cut }!
            let result = walk(Self.ring(size: 256, start: 200, bytes), tail: 200, head: UInt64(200 + cut))
            #expect(result.seen == Array(expected.prefix(whole)), "cut \(cut)")
            #expect(result.walk == PerfRingWalker.Walk(tail: UInt64(200 + ends[whole]), corrupt: false))
        }
    }

    @Test func anEmptyRingReadsNothing() {
        let result = walk([UInt8](repeating: 0, count: 64), tail: 128, head: 128)
        #expect(result.seen.isEmpty)
        #expect(result.walk == PerfRingWalker.Walk(tail: 128, corrupt: false))
    }

    /// A header claiming fewer bytes than itself would loop forever: everything is given up.
    @Test func anImpossibleHeaderSkipsToTheHead() {
        var bytes = Fixtures.lost(1) + Fixtures.lost(2)
        Fixtures.put(UInt16(4), at: 24 + 6, in: &bytes)
        let result = walk(Self.ring(size: 64, start: 0, bytes), tail: 0, head: UInt64(bytes.count))
        #expect(result.seen == [.lost(1)])
        #expect(result.walk == PerfRingWalker.Walk(tail: UInt64(bytes.count), corrupt: true))
    }

    @Test func aHeadTooFarAheadIsGarbage() {
        let result = walk([UInt8](repeating: 0, count: 64), tail: 0, head: 65)
        #expect(result.seen.isEmpty)
        #expect(result.walk == PerfRingWalker.Walk(tail: 65, corrupt: true))
    }

    /// Records of other types are handed out too; samples and losses read as what they are.
    @Test func otherRecordsAreNeitherSamplesNorLosses() {
        let bytes = Fixtures.perfRecord(type: 14, body: [1, 2, 3, 4])
        #expect(walk(Self.ring(size: 64, start: 60, bytes), tail: 60, head: 60 + UInt64(bytes.count)).seen == [.other(14)])
    }

    @Test func samplesCarryTheKernelsTime() {
        let bytes = Fixtures.sample([1, 2, 3, 4], time: 42)
        let time = Self.ring(size: 64, start: 0, bytes).withUnsafeBytes { ring in
            var walker = PerfRingWalker()
            var time: UInt64?
            _ = walker.walk(ring, tail: 0, head: UInt64(bytes.count)) { time = $0.timedRawSample?.nanoseconds }
            return time
        }
        #expect(time == 42)
    }

    /// A sample whose raw size runs past the record is not a raw sample.
    @Test func aRawSizePastTheRecordIsRefused() {
        var bytes = Fixtures.sample([1, 2, 3, 4])
        Fixtures.put(UInt32(64), at: 16, in: &bytes)
        #expect(walk(Self.ring(size: 64, start: 0, bytes), tail: 0, head: UInt64(bytes.count)).seen == [.other(9)])
    }
}
