/// What one traced configuration write does to a bridge's Secondary Bus Reset bit
/// (Bridge Control, offset 0x3e, bit 0x40).
///
/// QEMU's `pci_cfg_write` trace does not print the access width, so the width is
/// inferred: at least the bytes the value needs (1, 2 or 4), never crossing a dword
/// (config cycles through 0xcf8/0xcfc and ECAM are naturally aligned). Linux writes
/// the register as a word at 0x3e (`pci_reset_secondary_bus`), which is always exact.
/// The one case the trace cannot settle: a write at 0x3c or 0x3d whose value fits in the
/// lower bytes is either a narrow write (interrupt line/pin) that leaves Bridge Control
/// alone, or a dword/word write that writes Bridge Control as 0. Such a write can never
/// *set* the bit (it would need the upper bytes), only maybe clear it.
package enum BridgeControlEffect: Equatable, Sendable {
    /// The write does not reach offset 0x3e.
    case untouched
    /// The write certainly wrote offset 0x3e; `secondaryBusReset` is the bit it wrote.
    case written(secondaryBusReset: Bool)
    /// The write may have written 0x3e as zero, or may not have reached it.
    case maybeCleared

    static let bridgeControlOffset: UInt16 = 0x3E
    static let secondaryBusResetBit: UInt32 = 0x40

    package init(_ write: PCIConfigAccess) {
        let target = Self.bridgeControlOffset
        let offset = write.offset
        guard offset <= target, target - offset < 4 else { self = .untouched; return }
        let shift = UInt32(target - offset) * 8
        let widthNeeded = write.value > 0xFFFF ? 4 : write.value > 0xFF ? 2 : 1
        let widthsPossible = [1, 2, 4].filter { $0 >= widthNeeded && Int(offset % 4) + $0 <= 4 }
        let covering = widthsPossible.filter { UInt16($0) > target - offset }
        let bit = (write.value >> shift) & Self.secondaryBusResetBit != 0
        if widthsPossible.isEmpty {
            // No aligned access prints this (e.g. a value over 0xffff at 0x3e): take the
            // bytes at face value rather than risk missing a reset.
            self = .written(secondaryBusReset: bit)
        } else if covering.isEmpty {
            self = .untouched
        } else if covering.count == widthsPossible.count {
            self = .written(secondaryBusReset: bit)
        } else {
            // Only the narrow widths miss 0x3e; a wide one would have written zeros there.
            self = .maybeCleared
        }
    }
}
