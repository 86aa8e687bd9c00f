import Testing
@testable import USDTProbes

@Suite struct PerfSampleRecordTests {
    private func le(_ value: UInt64, _ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }

    @Test func aSampleCarriesIdThreadTimeAndTheMaskedRegistersInBitOrder() {
        let mask = X86Register.ax.perfMask | X86Register.cx.perfMask | X86Register.r11.perfMask
        var body = le(42, 8) + le(1000, 4) + le(1001, 4) + le(123_456, 8) + le(2, 8)  // id, pid, tid, time, abi 64
        body += le(0xaa, 8) + le(0xcc, 8) + le(0x11, 8)  // ax, cx, r11
        let record = le(9, 4) + le(0, 2) + le(UInt64(8 + body.count), 2) + body
        #expect(PerfSampleRecord.size(ofRecordAt: record[...]) == record.count)
        #expect(PerfSampleRecord.decode(record[...], registerMask: mask) == .sample(.init(
            eventID: 42, pid: 1000, threadID: 1001, time: 123_456, registers: [0: 0xaa, 2: 0xcc, 19: 0x11])))
    }

    @Test func noRegistersWhenTheAbiIsNone() {
        let body = le(7, 8) + le(1, 4) + le(1, 4) + le(5, 8) + le(0, 8)
        let record = le(9, 4) + le(0, 2) + le(UInt64(8 + body.count), 2) + body
        #expect(PerfSampleRecord.decode(record[...], registerMask: 0b111) == .sample(.init(eventID: 7, pid: 1, threadID: 1, time: 5, registers: [:])))
    }

    @Test func lostRecordsCountDrops() {
        let record = le(2, 4) + le(0, 2) + le(24, 2) + le(42, 8) + le(17, 8)
        #expect(PerfSampleRecord.decode(record[...], registerMask: 0) == .lost(count: 17))
    }

    @Test func aTruncatedRecordIsNotDecoded() {
        let record = le(9, 4) + le(0, 2) + le(64, 2) + le(42, 8)
        #expect(PerfSampleRecord.decode(record[...], registerMask: 0) == nil)
    }
}
