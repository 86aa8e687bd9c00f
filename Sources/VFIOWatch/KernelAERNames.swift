import ErrorEvents

/// Turns the names the kernel prints in `aer_dev_*` into AER status bits.
///
/// `AERError.named` covers the names that the kernel and QEMU 7.2 share. The kernel
/// (drivers/pci/pcie/aer.c, `aer_uncorrectable_error_string`) prints more:
/// uncorrectable bit 0 as `Undefined`; bits 22–26 by name since 5.4 (so on Debian 12's
/// 6.1); bits 27–31 by name only in the newest kernels (before that they are not even
/// counted). Bits without a name print as `<array>_bit[N]`, where the array is
/// `dev_cor_errs`, `dev_nonfatal_errs` or `dev_fatal_errs`, and only when non-zero.
enum KernelAERNames {
    /// Uncorrectable names the kernel prints that `AERError.uncorrectableErrors` lacks.
    static let extraUncorrectableBits: [String: Int] = [
        "Undefined": 0,
        "UncorrIntErr": 22,
        "BlockedTLP": 23,
        "AtomicOpBlocked": 24,
        "TLPBlockedErr": 25,
        "PoisonTLPBlocked": 26,
        "DMWrReqBlocked": 27,
        "IDECheck": 28,
        "MisIDETLP": 29,
        "PCRC_CHECK": 30,
        "TLPXlatBlocked": 31,
    ]

    /// The kernel's name for this severity's counter array, the prefix of unnamed bits.
    static func statsArrayName(for severity: Severity) -> String {
        switch severity {
        case .correctable: "dev_cor_errs"
        case .nonFatal: "dev_nonfatal_errs"
        case .fatal: "dev_fatal_errs"
        }
    }

    /// The AER bit behind a name printed in this severity's file; nil for a name this
    /// code does not know (a newer kernel's), which is still counted under its name.
    static func error(named name: String, severity: Severity) -> AERError? {
        let correctable = severity.isCorrectable
        if name.hasSuffix("]") {
            // Only this file's own array prefix: `dev_fatal_errs_bit[N]` in aer_dev_fatal.
            guard name.hasPrefix(statsArrayName(for: severity) + "_bit[") else { return nil }
            return AERError.named(name, correctable: correctable)
        }
        if let known = AERError.named(name, correctable: correctable) { return known }
        if !correctable, let bit = extraUncorrectableBits[name] {
            return AERError(correctable: false, bit: bit, sysfsName: name, qemuName: nil)
        }
        return nil
    }
}
