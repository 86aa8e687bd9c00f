import KernelTracepoint
import Testing

@Suite struct AERTraceEventTests {
    private let layout = try! AERTraceLayout(try! TracepointFormat.parse(Fixtures.aerEventFormat))

    private func decode(_ bytes: [UInt8]) -> AERTraceEvent? {
        bytes.withUnsafeBytes { layout.decode($0) }
    }

    @Test func decodesANonFatalErrorOfAPort() {
        #expect(decode(Fixtures.aerRecord()) == AERTraceEvent(deviceName: "0000:01:00.0", status: 0x4000,
                                                               severity: .nonFatal, tlpHeaderValid: true))
    }

    /// The kernel's AER_NONFATAL 0, AER_FATAL 1, AER_CORRECTABLE 2.
    @Test func severitiesAreTheKernels() {
        #expect(decode(Fixtures.aerRecord(severity: 1))?.severity == .fatal)
        #expect(decode(Fixtures.aerRecord(status: 0x1, severity: 2, tlpValid: 0)) ==
                AERTraceEvent(deviceName: "0000:01:00.0", status: 1, severity: .correctable, tlpHeaderValid: false))
        #expect(decode(Fixtures.aerRecord(severity: 3)) == nil)
    }

    /// A fatal error behind a dead link: the kernel could not read the status.
    @Test func anInaccessibleDeviceHasNoStatus() {
        #expect(decode(Fixtures.aerRecord(device: "0000:00:01.0", status: 0, severity: 1))?.status == 0)
    }

    @Test func relativeLocationsPointFromTheFieldsEnd() throws {
        let text = Fixtures.aerEventFormat.replacingOccurrences(of: "__data_loc", with: "__rel_loc")
        let relative = try AERTraceLayout(try TracepointFormat.parse(text))
        let event = Fixtures.aerRecord(relative: true).withUnsafeBytes { relative.decode($0) }
        #expect(event?.deviceName == "0000:01:00.0")
    }

    @Test func recordsOfAnotherTracepointAreNotAERs() {
        #expect(decode(Fixtures.aerRecord(type: 365)) == nil)
    }

    /// A record cut anywhere gives nil, never a read past its end.
    @Test func cutAtEveryPoint() {
        let record = Fixtures.aerRecord()
        for length in 0..<record.count {
            #expect(decode(Array(record[..<length])) == nil, "cut at \(length)")
        }
    }

    @Test func aLocationPastTheEndIsRefused() {
        var record = Fixtures.aerRecord()
        Fixtures.put(UInt32(13) << 16 | 40, at: 8, in: &record)
        #expect(decode(record) == nil)
    }

    /// Padding after the NUL (perf pads raw records to 8 bytes) is not part of the name.
    @Test func theNameEndsAtItsNUL() {
        #expect(decode(Fixtures.aerRecord() + [0, 0, 0])?.deviceName == "0000:01:00.0")
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
