import ErrorEvents
import Testing

/// `pcie_aer_inject_error` as QEMU 7.2 takes it: numeric status, one supported bit per command.
@Suite struct AERInjectionPlanTests {
    @Test func uncorrectableCommandIsIdThenHexStatus() {
        let plan = GuestAERError(severity: .nonFatal, errors: completionTimeout.errors).injectionPlan
        #expect(plan.commands.count == 1)
        #expect(plan.commands[0].arguments(target: "hostdev0") == ["hostdev0", "0x4000"])
        #expect(plan.commands[0].commandLine(target: "hostdev0") == "pcie_aer_inject_error hostdev0 0x4000")
    }

    @Test func correctableCommandCarriesDashC() {
        let plan = GuestAERError(severity: .correctable, errors: receiverError.errors).injectionPlan
        #expect(plan.correctable)
        #expect(plan.commands.map { $0.commandLine(target: "rp0") } == ["pcie_aer_inject_error -c rp0 0x1"])
    }

    @Test func severalBitsBecomeOneCommandEach() throws {
        // QEMU rejects a status with more than one bit set (EINVAL).
        let error = try HostError(severity: .correctable, names: ["BadTLP", "BadDLLP", "Rollover"], source: .sysfs)
        let plan = GuestAERError(severity: .correctable, errors: error.errors).injectionPlan
        #expect(plan.commands.map(\.statusArgument) == ["0x40", "0x80", "0x100"])
        #expect(plan.commands.allSatisfy { $0.status.nonzeroBitCount == 1 })
    }

    @Test func bitsOfTheHostsSeverityGoFirst() throws {
        // Host says fatal for CmpltTO (firmware-set severity) and DLP: QEMU's defaults
        // classify DLP as fatal, so it goes first and the guest's first message is fatal.
        let error = try HostError(severity: .fatal, names: ["CmpltTO", "DLP", "MalfTLP"], source: .sysfs)
        let plan = GuestAERError(severity: .fatal, errors: error.errors).injectionPlan
        #expect(plan.commands.map(\.bit) == [4, 18, 14])
        #expect(plan.guestSeverityAtDefaults == .fatal)
        let nonFatal = try HostError(severity: .nonFatal, names: ["DLP", "CmpltTO"], source: .sysfs)
        let nonFatalPlan = GuestAERError(severity: .nonFatal, errors: nonFatal.errors).injectionPlan
        #expect(nonFatalPlan.commands.map(\.bit) == [14, 4])
    }

    @Test func severityMismatchIsVisible() throws {
        let error = try HostError(severity: .fatal, names: ["CmpltTO"], source: .sysfs)
        let plan = GuestAERError(severity: .fatal, errors: error.errors).injectionPlan
        #expect(plan.commands.map(\.bit) == [14])
        #expect(plan.guestSeverityAtDefaults == .nonFatal)
    }

    @Test func unsupportedBitsAreLeftOutAndReported() throws {
        let error = try HostError(severity: .fatal, names: ["DLP", "dev_fatal_errs_bit[27]"], source: .sysfs)
        let plan = GuestAERError(severity: .fatal, errors: error.errors).injectionPlan
        #expect(plan.commands.map(\.bit) == [4])
        #expect(plan.uninjectable == 1 << 27)
        #expect(!plan.usesDefaultBit)
    }

    @Test func onlyUnsupportedBitsFallBackToTheDefault() throws {
        let error = try HostError(severity: .nonFatal, names: ["dev_nonfatal_errs_bit[30]"], source: .sysfs)
        let plan = GuestAERError(severity: .nonFatal, errors: error.errors).injectionPlan
        #expect(plan.commands.map(\.bit) == [14])
        #expect(plan.usesDefaultBit)
        #expect(plan.uninjectable == 1 << 30)
    }

    @Test func everyNamedErrorIsInjectable() {
        for error in AERError.correctableErrors + AERError.uncorrectableErrors {
            let severity: Severity = error.correctable ? .correctable : .nonFatal
            let plan = GuestAERError(severity: severity, errors: [error]).injectionPlan
            #expect(plan.commands.map(\.bit) == [error.bit], "\(error.sysfsName)")
            #expect(plan.uninjectable == 0)
        }
    }

    @Test func qemuDefaultSeverities() {
        let fatalByDefault = AERError.uncorrectableErrors
            .filter { AERInjectionCommand(correctable: false, bit: $0.bit).severityAtGuestDefaults == .fatal }
            .map(\.sysfsName)
        #expect(fatalByDefault == ["DLP", "SDES", "FCP", "RxOF", "MalfTLP"])
        #expect(AERInjectionCommand(correctable: true, bit: 13).severityAtGuestDefaults == .correctable)
    }

    @Test func statusArgumentCoversTheTopBit() {
        #expect(AERInjectionCommand(correctable: false, bit: 31).statusArgument == "0x80000000")
    }

    @Test func correctableErrorsReachTheGuestFromQEMU81() {
        let correctable = GuestAERError(severity: .correctable, errors: []).injectionPlan
        let fatal = GuestAERError(severity: .fatal, errors: []).injectionPlan
        #expect(!correctable.reachesGuest(on: QEMUVersion(7, 2, 9)))
        #expect(!correctable.reachesGuest(on: QEMUVersion(8, 0, 5)))
        #expect(correctable.reachesGuest(on: QEMUVersion(8, 1)))
        #expect(correctable.reachesGuest(on: QEMUVersion(9, 0)))
        #expect(fatal.reachesGuest(on: QEMUVersion(7, 2)))
        #expect(AERInjectionPlan.undeliveredNote == "recorded, not delivered (QEMU < 8.1)")
    }

    /// The log line of a correctable injection says what the event's note says, by version.
    @Test func correctableDeliveryIsWordedByQEMUVersion() {
        let correctable = GuestAERError(severity: .correctable, errors: []).injectionPlan
        let nonFatal = GuestAERError(severity: .nonFatal, errors: []).injectionPlan
        #expect(correctable.correctableDelivery(on: QEMUVersion(7, 2, 22)) == AERInjectionPlan.undeliveredNote)
        #expect(correctable.correctableDelivery(on: QEMUVersion(8, 1)) == "delivered to the guest (QEMU >= 8.1)")
        #expect(correctable.correctableDelivery(on: QEMUVersion(10, 0, 2)) == AERInjectionPlan.deliveredNote)
        #expect(correctable.correctableDelivery(on: nil) == AERInjectionPlan.deliveryUnknownNote)
        #expect(nonFatal.correctableDelivery(on: QEMUVersion(7, 2)) == nil)
    }
}
