import ErrorEvents
import Testing

/// The error to raise in the guest: host bits of the right table, or a default bit.
@Suite struct GuestAERErrorTests {
    @Test func statusIsTheUnionOfTheHostsBits() throws {
        let error = try HostError(severity: .fatal, names: ["DLP", "MalfTLP"], source: .sysfs)
        let guest = GuestAERError(severity: .fatal, errors: error.errors)
        #expect(guest.status == 0x0004_0010)
        #expect(!guest.correctable)
    }

    @Test func correctableFlagFollowsSeverity() {
        #expect(GuestAERError(severity: .correctable, errors: receiverError.errors).correctable)
        #expect(!GuestAERError(severity: .nonFatal, errors: completionTimeout.errors).correctable)
    }

    @Test(arguments: [
        (Severity.fatal, 4, UInt32(0x10)),  // DLP
        (.nonFatal, 14, 0x4000),  // CmpltTO
        (.correctable, 0, 0x1),  // RxErr
    ])
    func defaultBitWhenNoErrorIsNamed(severity: Severity, bit: Int, status: UInt32) {
        #expect(GuestAERError.defaultBit(for: severity) == bit)
        #expect(GuestAERError(severity: severity, errors: []).status == status)
        #expect(GuestAERError(severity: severity, status: 0).status == status)
    }

    @Test func defaultBitsAreClassifiedAsTheirSeverityByQEMU() {
        for severity in Severity.allCases {
            let plan = GuestAERError(severity: severity, errors: []).injectionPlan
            #expect(plan.guestSeverityAtDefaults == severity, "\(severity)")
        }
    }

    @Test func errorsOfTheOtherTableAreIgnored() {
        // A correctable error handed in with a fatal severity cannot share the injection.
        let guest = GuestAERError(severity: .fatal, errors: receiverError.errors + dlp.errors)
        #expect(guest.status == 0x10)
        let onlyOther = GuestAERError(severity: .fatal, errors: receiverError.errors)
        #expect(onlyOther.status == GuestAERError.defaultStatus(for: .fatal))
    }
}
