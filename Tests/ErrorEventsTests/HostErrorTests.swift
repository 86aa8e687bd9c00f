import ErrorEvents
import Testing

@Suite struct HostErrorTests {
    @Test func namesResolveInTheSeveritysTable() throws {
        let error = try HostError(severity: .fatal, names: ["DLP", "SDES", "dev_fatal_errs_bit[22]"], source: .sysfs)
        #expect(error.errors.map(\.bit) == [4, 5, 22])
        #expect(error.errors.allSatisfy { !$0.correctable })
        // Bit 12 is `Timeout` among correctable errors but poisoned `TLP` among uncorrectable ones.
        let correctable = try HostError(severity: .correctable, names: ["Timeout"], source: .sysfs)
        #expect(correctable.errors.map(\.sysfsName) == ["Timeout"])
    }

    @Test func qemuNamesAreAcceptedToo() throws {
        let error = try HostError(severity: .nonFatal, names: ["COMP_TIME"], source: .inject)
        #expect(error.errors.map(\.sysfsName) == ["CmpltTO"])
    }

    @Test func unknownNameIsRejectedWithTheName() {
        #expect(throws: UnknownAERErrorName(name: "CmpltTO", severity: .correctable)) {
            try HostError(severity: .correctable, names: ["RxErr", "CmpltTO"], source: .inject)
        }
    }

    @Test func countIsAtLeastOne() {
        #expect(HostError(severity: .fatal, count: 0, source: .eventfd).count == 1)
        #expect(HostError(severity: .fatal, count: -3, source: .eventfd).count == 1)
        #expect(HostError(severity: .fatal, count: 7, source: .eventfd).count == 7)
    }

    @Test func sourceNamesMatchTheSchema() {
        #expect(ErrorSource.allCases.map(\.rawValue) == ["eventfd", "sysfs", "uevent", "aer-tracepoint", "inject"])
    }
}
