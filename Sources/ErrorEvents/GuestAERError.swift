/// The AER error to raise in the guest-visible device: the `forwardToGuest` payload.
///
/// `status` is the host's AER status bits (one table: correctable or uncorrectable). QEMU
/// injects one bit per command; `injectionPlan` turns this into those commands.
package struct GuestAERError: Hashable, Sendable {
    package let severity: Severity
    /// Bits of the Correctable (if `correctable`) or Uncorrectable Error Status register.
    package let status: UInt32

    package var correctable: Bool { severity.isCorrectable }

    package init(severity: Severity, status: UInt32) {
        self.severity = severity
        self.status = status == 0 ? Self.defaultStatus(for: severity) : status
    }

    /// The bits of `errors` that belong to `severity`'s table; when the source named none
    /// (a bare eventfd), the severity's default bit.
    /// Errors from the other table are ignored here: QEMU's `-c` flag applies to the whole
    /// status, so one injection cannot mix the two registers.
    package init(severity: Severity, errors: [AERError]) {
        var status: UInt32 = 0
        for error in errors where error.correctable == severity.isCorrectable {
            status |= error.mask
        }
        self.init(severity: severity, status: status)
    }

    /// The bit injected when the host could not say which error it saw. Each is one that
    /// QEMU 7.2 supports, that its reset-default registers classify as `severity` and do not
    /// mask, and that is the typical error of that class, so the guest's AER driver takes
    /// the recovery path the host severity calls for:
    /// - fatal: DLP (bit 4), Data Link Protocol Error. A link-level fault: the guest
    ///   resets the link, which is exactly the reset the broker must see.
    /// - non-fatal: CmpltTO (bit 14), Completion Timeout: "a transaction was lost", the
    ///   common non-fatal case; driver-level recovery, no link reset. (Poisoned TLP implies
    ///   data corruption, and UnsupReq takes a special reporting path in QEMU.)
    /// - correctable: RxErr (bit 0), Receiver Error, the most common corrected error; the
    ///   advisory/internal/header-overflow bits are masked at reset and would be invisible.
    package static func defaultBit(for severity: Severity) -> Int {
        switch severity {
        case .correctable: 0
        case .nonFatal: 14
        case .fatal: 4
        }
    }

    package static func defaultStatus(for severity: Severity) -> UInt32 {
        UInt32(1) << UInt32(defaultBit(for: severity))
    }
}
