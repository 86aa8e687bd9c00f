/// What QEMU's AER emulation accepts and how it classifies, from `include/hw/pci/pcie_regs.h`
/// and `hw/pci/pcie_aer.c` (unchanged in these respects from 7.2 to today).
enum QEMUAERModel {
    /// `PCI_ERR_UNC_SUPPORTED`: DLP, SDN, POISON_TLP, FCP, COMP_TIME, COMP_ABORT, UNX_COMP,
    /// RX_OVER, MALF_TLP, ECRC, UNSUP, ACSV, INTN, MCBTLP, ATOP_EBLOCKED, TLP_PRF_BLOCKED:
    /// bits 4, 5 and 12 through 25.
    static let supportedUncorrectable: UInt32 = 0x03FF_F030

    /// `PCI_ERR_COR_SUPPORTED`: RCVR, BAD_TLP, BAD_DLLP, REP_ROLL, REP_TIMER, ADV_NONFATAL,
    /// INTERNAL, HL_OVERFLOW: bits 0, 6, 7, 8 and 12 through 15.
    static let supportedCorrectable: UInt32 = 0x0000_F1C1

    /// `PCI_ERR_UNC_SEVERITY_DEFAULT`, the reset value of the emulated Uncorrectable Error
    /// Severity register: DLP, SDN, FCP, RX_OVER, MALF_TLP, INTN (bits 4, 5, 13, 17, 18, 22).
    /// QEMU decides fatal vs non-fatal for an injected bit from this register (which the
    /// guest may reprogram), not from anything on the command line.
    static let fatalBySeverityDefault: UInt32 = 0x0046_2030

    static func supported(correctable: Bool) -> UInt32 {
        correctable ? supportedCorrectable : supportedUncorrectable
    }

    /// The severity QEMU gives an injected bit while the guest leaves the severity register alone.
    static func severityAtDefaults(bit: Int, correctable: Bool) -> Severity {
        if correctable { return .correctable }
        return fatalBySeverityDefault & (UInt32(1) << UInt32(bit)) != 0 ? .fatal : .nonFatal
    }
}
