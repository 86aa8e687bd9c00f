/// One guest access to a PCI function's configuration space, as QEMU 7.2 traces it:
///
///     pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40
///     pci_cfg_read pcie-root-port 00:1c.0 @0x3e -> 0x40
///
/// (format `%s %02x:%02x.%x @0x%x <- 0x%x`, from `pci_host_config_write_common`).
/// The trace has no access width: a byte write of 0x40 at 0x3e and a word write of 0x40
/// at 0x3e print the same line, and a dword write at 0x3c whose upper half is zero
/// prints like a word write at 0x3c. `BridgeControlEffect` reasons about that.
package struct PCIConfigAccess: Hashable, Sendable {
    /// QEMU's type name of the device model (`pcie-root-port`, `xio3130-downstream`,
    /// `vfio-pci`), not the user's `id`.
    package let model: String
    package let address: GuestPCIAddress
    /// Byte offset into configuration space.
    package let offset: UInt16
    /// The value as the guest wrote it (or as QEMU returned it, for reads).
    package let value: UInt32

    package init(model: String, address: GuestPCIAddress, offset: UInt16, value: UInt32) {
        self.model = model
        self.address = address
        self.offset = offset
        self.value = value
    }
}
