/// How bad a host PCIe error is, as the AER core classifies it.
package enum Severity: String, Sendable, Hashable, CaseIterable, Codable {
    case correctable
    case nonFatal = "non-fatal"
    case fatal
}

/// One AER status bit: its name in the kernel's sysfs counters and in QEMU's injector.
///
/// The two do not agree (SPEC section 9): sysfs says `CmpltTO`, QEMU 7.2 says
/// `COMP_TIME`. The broker injects the bit mask as a number, which QEMU accepts
/// whatever it calls the bit.
package struct AERError: Hashable, Sendable {
    package let correctable: Bool
    package let bit: Int
    /// The name the kernel prints in `aer_dev_*`; unnamed bits are `dev_*_errs_bit[N]` there.
    package let sysfsName: String
    /// QEMU 7.2's `pcie_aer_inject_error` name, when it has one.
    package let qemuName: String?

    package var mask: UInt32 { UInt32(1) << UInt32(bit) }

    package init(correctable: Bool, bit: Int, sysfsName: String, qemuName: String?) {
        self.correctable = correctable
        self.bit = bit
        self.sysfsName = sysfsName
        self.qemuName = qemuName
    }

    package static let correctableErrors: [AERError] = [
        .init(correctable: true, bit: 0, sysfsName: "RxErr", qemuName: "RCVR"),
        .init(correctable: true, bit: 6, sysfsName: "BadTLP", qemuName: "BAD_TLP"),
        .init(correctable: true, bit: 7, sysfsName: "BadDLLP", qemuName: "BAD_DLLP"),
        .init(correctable: true, bit: 8, sysfsName: "Rollover", qemuName: "REP_ROLL"),
        .init(correctable: true, bit: 12, sysfsName: "Timeout", qemuName: "REP_TIMER"),
        .init(correctable: true, bit: 13, sysfsName: "NonFatalErr", qemuName: "ADV_NONFATAL"),
        .init(correctable: true, bit: 14, sysfsName: "CorrIntErr", qemuName: "INTERNAL"),
        .init(correctable: true, bit: 15, sysfsName: "HeaderOF", qemuName: "HL_OVERFLOW"),
    ]

    package static let uncorrectableErrors: [AERError] = [
        .init(correctable: false, bit: 4, sysfsName: "DLP", qemuName: "DLP"),
        .init(correctable: false, bit: 5, sysfsName: "SDES", qemuName: "SDN"),
        .init(correctable: false, bit: 12, sysfsName: "TLP", qemuName: "POISON_TLP"),
        .init(correctable: false, bit: 13, sysfsName: "FCP", qemuName: "FCP"),
        .init(correctable: false, bit: 14, sysfsName: "CmpltTO", qemuName: "COMP_TIME"),
        .init(correctable: false, bit: 15, sysfsName: "CmpltAbrt", qemuName: "COMP_ABORT"),
        .init(correctable: false, bit: 16, sysfsName: "UnxCmplt", qemuName: "UNX_COMP"),
        .init(correctable: false, bit: 17, sysfsName: "RxOF", qemuName: "RX_OVER"),
        .init(correctable: false, bit: 18, sysfsName: "MalfTLP", qemuName: "MALF_TLP"),
        .init(correctable: false, bit: 19, sysfsName: "ECRC", qemuName: "ECRC"),
        .init(correctable: false, bit: 20, sysfsName: "UnsupReq", qemuName: "UNSUP"),
        .init(correctable: false, bit: 21, sysfsName: "ACSViol", qemuName: "ACSV"),
    ]

    /// Looks a name up the way the kernel prints it (`DLP`, `dev_fatal_errs_bit[22]`),
    /// or as QEMU names it (`COMP_TIME`). `correctable` picks the table; names overlap.
    package static func named(_ name: String, correctable: Bool) -> AERError? {
        let table = correctable ? correctableErrors : uncorrectableErrors
        if let known = table.first(where: { $0.sysfsName == name || $0.qemuName == name }) { return known }
        // Unnamed bits: `dev_cor_errs_bit[N]`, `dev_fatal_errs_bit[N]`, `dev_nonfatal_errs_bit[N]`.
        guard name.hasSuffix("]"), let open = name.lastIndex(of: "["),
              let bit = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]),
              (0...31).contains(bit) else { return nil }
        if let known = table.first(where: { $0.bit == bit }) { return known }
        return AERError(correctable: correctable, bit: bit, sysfsName: name, qemuName: nil)
    }
}

extension Severity {
    /// The AER table whose names this severity's counters use.
    package var isCorrectable: Bool { self == .correctable }
}
