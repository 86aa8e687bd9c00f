/// Trace lines captured from Debian's QEMU 7.2.22 (`qemu-system-x86_64` as in
/// `CapturedQueryPCI`), written to a `logfile` with the events of `LinkResetTracing`
/// enabled by `trace-event-set-state`.
enum CapturedTraceLines {
    /// Without `-msg timestamp=on`, after qtest `outl 0xcf8 0x8000e03c` / `outw 0xcfe 0x40`.
    static let plainWrite = "pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40"
    /// The same write with `-msg timestamp=on`: `TID@SECONDS.MICROSECONDS:` glued to the name.
    static let stampedWrite = "12968@1795610769.786173:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40"
    /// `pci_cfg_read` of the same register (qtest `inw 0xcfe`).
    static let stampedRead = "12968@1795610769.789559:pci_cfg_read pcie-root-port 00:1c.0 @0x3e -> 0x40"
    /// Byte write to the upper half of Bridge Control (`outb 0xcff 0x0`).
    static let upperByteWrite = "12968@1795610769.802242:pci_cfg_write pcie-root-port 00:1c.0 @0x3f <- 0x0"
    /// Switch ports, from the `CapturedQueryPCI.switched` machine.
    static let switchBusNumbers = "20742@1795610948.197528:pci_cfg_write x3130-upstream 02:00.0 @0x18 <- 0x40302"
    static let downstreamPortReset = "20742@1795610948.197640:pci_cfg_write xio3130-downstream 03:00.0 @0x3e <- 0x40"
    /// What a real guest's AER recovery wrote (SPEC section 9, Debian 6.1 kernel under QEMU 7.2).
    static let guestAssert = "pci_cfg_write pcie-root-port 00:01.0 @0x3e <- 0x42"
    static let guestRelease = "pci_cfg_write pcie-root-port 00:01.0 @0x3e <- 0x2"

    /// Lines the same log target carries that are not ours (must parse to nil).
    static let foreign = [
        // `-d guest_errors` output (qtest `writeb 0xfed00000 0x1`).
        "Invalid write at addr 0x0, size 1, region 'hpet', reason: invalid size (min:4 max:4)",
        // Other reset traces (captured with those events on).
        "resettable_reset obj=0x56208b166100 cold=0",
        "resettable_phase_enter_begin obj=0x55f902494230(pcie-root-port) count=0 type=0",
        "resettable_phase_exit_end obj=0x55f902550500(virtio-rng-pci) count=0",
        "qmp_enter_system_reset {}",
        "qbus_reset_all obj=0x55f902494c60(PCIE)",
        "",
    ]

    /// vfio lines, written from the format strings in the 7.2.22 binary
    /// (`vfio_pci_hot_reset " (%s) %s"`, `vfio_pci_hot_reset_result "%s hot reset: %s"`):
    /// there is no host device to assign here.
    static let hotResetOne = "vfio_pci_hot_reset  (0000:3b:00.0) one"
    static let hotResetMulti = "4242@1795611328.727900:vfio_pci_hot_reset  (0000:3b:00.0) multi"
    static let hotResetSuccess = "vfio_pci_hot_reset_result 0000:3b:00.0 hot reset: Success"
    static let hotResetFailure = "vfio_pci_hot_reset_result 0000:3b:00.0 hot reset: Device or resource busy"

    /// The whole log of one session on the `CapturedQueryPCI` machine with `-msg timestamp=on`:
    /// qtest programs rp0's bus numbers, writes the interrupt line (byte at 0x3c), sets and
    /// clears SBR by word at 0x3e (0x42, 0x2, as Linux does), sets it by dword at 0x3c, writes
    /// the interrupt line again (QEMU left SBR set: a byte write), writes the same dword again
    /// (no new reset in QEMU) and clears it by dword; then QMP `system_reset`.
    static let session = #"""
864@1795611328.508671:pci_cfg_write pcie-root-port 00:1c.0 @0x18 <- 0x10100
864@1795611328.508797:pci_cfg_write pcie-root-port 00:1c.0 @0x3c <- 0xb
864@1795611328.508848:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x42
864@1795611328.509141:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x2
864@1795611328.509331:pci_cfg_write pcie-root-port 00:1c.0 @0x3c <- 0x420000
864@1795611328.509530:pci_cfg_write pcie-root-port 00:1c.0 @0x3c <- 0xb
864@1795611328.509596:pci_cfg_write pcie-root-port 00:1c.0 @0x3c <- 0x420000
864@1795611328.509755:pci_cfg_write pcie-root-port 00:1c.0 @0x3c <- 0x20000
864@1795611328.727230:resettable_phase_enter_begin obj=0x55687a626d00(qemu64-x86_64-cpu) count=0 type=0
864@1795611328.727263:resettable_phase_exit_end obj=0x55687a626d00(qemu64-x86_64-cpu) count=0
864@1795611328.727273:resettable_phase_enter_begin obj=0x55687a60be30(System) count=0 type=0
864@1795611328.727278:resettable_phase_enter_begin obj=0x55687aeb82d8(ps2-mouse) count=0 type=0
864@1795611328.727281:resettable_phase_enter_begin obj=0x55687aeb7e70(ps2-kbd) count=0 type=0
864@1795611328.727284:resettable_phase_enter_begin obj=0x55687ae0bed0(hpet) count=0 type=0
864@1795611328.727288:resettable_phase_enter_begin obj=0x55687adacd80(ioapic) count=0 type=0
864@1795611328.727291:resettable_phase_enter_begin obj=0x55687a68d680(q35-pcihost) count=0 type=0
864@1795611328.727295:resettable_phase_enter_begin obj=0x55687a7c50f0(PCIE) count=0 type=0
864@1795611328.727299:resettable_phase_enter_begin obj=0x55687afaa230(pcie-root-port) count=0 type=0
864@1795611328.727301:resettable_phase_enter_begin obj=0x55687afaac60(PCIE) count=0 type=0
864@1795611328.727305:resettable_phase_enter_begin obj=0x55687b066190(virtio-rng-pci) count=0 type=0
864@1795611328.727308:resettable_phase_enter_begin obj=0x55687b06e4d8(virtio-pci-bus) count=0 type=0
864@1795611328.727311:resettable_phase_enter_begin obj=0x55687b06e560(virtio-rng-device) count=0 type=0
864@1795611328.727380:resettable_phase_enter_begin obj=0x55687afa1210(ICH9-SMB) count=0 type=0
864@1795611328.727385:resettable_phase_enter_begin obj=0x55687af9cb50(i2c-bus) count=0 type=0
864@1795611328.727388:resettable_phase_enter_begin obj=0x55687afa5210(smbus-eeprom) count=0 type=0
864@1795611328.727390:resettable_phase_enter_begin obj=0x55687afa6210(smbus-eeprom) count=0 type=0
864@1795611328.727392:resettable_phase_enter_begin obj=0x55687a425000(smbus-eeprom) count=0 type=0
864@1795611328.727394:resettable_phase_enter_begin obj=0x55687a45b210(smbus-eeprom) count=0 type=0
864@1795611328.727396:resettable_phase_enter_begin obj=0x55687a4c1610(smbus-eeprom) count=0 type=0
864@1795611328.727398:resettable_phase_enter_begin obj=0x55687a584000(smbus-eeprom) count=0 type=0
864@1795611328.727400:resettable_phase_enter_begin obj=0x55687a59d600(smbus-eeprom) count=0 type=0
864@1795611328.727401:resettable_phase_enter_begin obj=0x55687a5a2400(smbus-eeprom) count=0 type=0
864@1795611328.727405:resettable_phase_enter_begin obj=0x55687af91760(ich9-ahci) count=0 type=0
864@1795611328.727407:resettable_phase_enter_begin obj=0x55687af9b0e0(IDE) count=0 type=0
864@1795611328.727409:resettable_phase_enter_begin obj=0x55687af99918(IDE) count=0 type=0
864@1795611328.727411:resettable_phase_enter_begin obj=0x55687af98150(IDE) count=0 type=0
864@1795611328.727412:resettable_phase_enter_begin obj=0x55687af96988(IDE) count=0 type=0
864@1795611328.727414:resettable_phase_enter_begin obj=0x55687af951c0(IDE) count=0 type=0
864@1795611328.727415:resettable_phase_enter_begin obj=0x55687af939f8(IDE) count=0 type=0
864@1795611328.727419:resettable_phase_enter_begin obj=0x55687abf4040(ICH9-LPC) count=0 type=0
864@1795611328.727422:resettable_phase_enter_begin obj=0x55687a471600(ISA) count=0 type=0
864@1795611328.727425:resettable_phase_enter_begin obj=0x55687a54de20(port92) count=0 type=0
864@1795611328.727428:resettable_phase_enter_begin obj=0x55687af22090(vmmouse) count=0 type=0
864@1795611328.727431:resettable_phase_enter_begin obj=0x55687aefd560(vmport) count=0 type=0
864@1795611328.727433:resettable_phase_enter_begin obj=0x55687aeb7db0(i8042) count=0 type=0
864@1795611328.727448:resettable_phase_enter_begin obj=0x55687a60abc0(isa-pcspk) count=0 type=0
864@1795611328.727451:resettable_phase_enter_begin obj=0x55687a55f980(isa-pit) count=0 type=0
864@1795611328.727454:resettable_phase_enter_begin obj=0x55687ae20720(mc146818rtc) count=0 type=0
864@1795611328.727460:resettable_phase_enter_begin obj=0x55687a3fa800(isa-i8259) count=0 type=0
864@1795611328.727462:resettable_phase_enter_begin obj=0x55687a4704f0(isa-i8259) count=0 type=0
864@1795611328.727465:resettable_phase_enter_begin obj=0x55687acb2710(i8257) count=0 type=0
864@1795611328.727467:resettable_phase_enter_begin obj=0x55687ac3a320(i8257) count=0 type=0
864@1795611328.727469:resettable_phase_enter_begin obj=0x55687a68de40(mch) count=0 type=0
864@1795611328.727472:resettable_phase_enter_begin obj=0x55687a752b40(fw_cfg_io) count=0 type=0
864@1795611328.727474:resettable_phase_enter_begin obj=0x55687a6638d0(kvmvapic) count=0 type=0
864@1795611328.727700:resettable_phase_exit_end obj=0x55687aeb82d8(ps2-mouse) count=0
864@1795611328.727703:resettable_phase_exit_end obj=0x55687aeb7e70(ps2-kbd) count=0
864@1795611328.727705:resettable_phase_exit_end obj=0x55687ae0bed0(hpet) count=0
864@1795611328.727707:resettable_phase_exit_end obj=0x55687adacd80(ioapic) count=0
864@1795611328.727710:resettable_phase_exit_end obj=0x55687b06e560(virtio-rng-device) count=0
864@1795611328.727711:resettable_phase_exit_end obj=0x55687b06e4d8(virtio-pci-bus) count=0
864@1795611328.727713:resettable_phase_exit_end obj=0x55687b066190(virtio-rng-pci) count=0
864@1795611328.727715:resettable_phase_exit_end obj=0x55687afaac60(PCIE) count=0
864@1795611328.727716:resettable_phase_exit_end obj=0x55687afaa230(pcie-root-port) count=0
864@1795611328.727718:resettable_phase_exit_end obj=0x55687afa5210(smbus-eeprom) count=0
864@1795611328.727719:resettable_phase_exit_end obj=0x55687afa6210(smbus-eeprom) count=0
864@1795611328.727721:resettable_phase_exit_end obj=0x55687a425000(smbus-eeprom) count=0
864@1795611328.727722:resettable_phase_exit_end obj=0x55687a45b210(smbus-eeprom) count=0
864@1795611328.727724:resettable_phase_exit_end obj=0x55687a4c1610(smbus-eeprom) count=0
864@1795611328.727725:resettable_phase_exit_end obj=0x55687a584000(smbus-eeprom) count=0
864@1795611328.727726:resettable_phase_exit_end obj=0x55687a59d600(smbus-eeprom) count=0
864@1795611328.727728:resettable_phase_exit_end obj=0x55687a5a2400(smbus-eeprom) count=0
864@1795611328.727729:resettable_phase_exit_end obj=0x55687af9cb50(i2c-bus) count=0
864@1795611328.727730:resettable_phase_exit_end obj=0x55687afa1210(ICH9-SMB) count=0
864@1795611328.727732:resettable_phase_exit_end obj=0x55687af9b0e0(IDE) count=0
864@1795611328.727734:resettable_phase_exit_end obj=0x55687af99918(IDE) count=0
864@1795611328.727735:resettable_phase_exit_end obj=0x55687af98150(IDE) count=0
864@1795611328.727737:resettable_phase_exit_end obj=0x55687af96988(IDE) count=0
864@1795611328.727738:resettable_phase_exit_end obj=0x55687af951c0(IDE) count=0
864@1795611328.727739:resettable_phase_exit_end obj=0x55687af939f8(IDE) count=0
864@1795611328.727741:resettable_phase_exit_end obj=0x55687af91760(ich9-ahci) count=0
864@1795611328.727743:resettable_phase_exit_end obj=0x55687a54de20(port92) count=0
864@1795611328.727744:resettable_phase_exit_end obj=0x55687af22090(vmmouse) count=0
864@1795611328.727746:resettable_phase_exit_end obj=0x55687aefd560(vmport) count=0
864@1795611328.727747:resettable_phase_exit_end obj=0x55687aeb7db0(i8042) count=0
864@1795611328.727749:resettable_phase_exit_end obj=0x55687a60abc0(isa-pcspk) count=0
864@1795611328.727750:resettable_phase_exit_end obj=0x55687a55f980(isa-pit) count=0
864@1795611328.727752:resettable_phase_exit_end obj=0x55687ae20720(mc146818rtc) count=0
864@1795611328.727754:resettable_phase_exit_end obj=0x55687a3fa800(isa-i8259) count=0
864@1795611328.727755:resettable_phase_exit_end obj=0x55687a4704f0(isa-i8259) count=0
864@1795611328.727757:resettable_phase_exit_end obj=0x55687acb2710(i8257) count=0
864@1795611328.727758:resettable_phase_exit_end obj=0x55687ac3a320(i8257) count=0
864@1795611328.727764:resettable_phase_exit_end obj=0x55687a471600(ISA) count=0
864@1795611328.727766:resettable_phase_exit_end obj=0x55687abf4040(ICH9-LPC) count=0
864@1795611328.727767:resettable_phase_exit_end obj=0x55687a68de40(mch) count=0
864@1795611328.727769:resettable_phase_exit_end obj=0x55687a7c50f0(PCIE) count=0
864@1795611328.727770:resettable_phase_exit_end obj=0x55687a68d680(q35-pcihost) count=0
864@1795611328.727772:resettable_phase_exit_end obj=0x55687a752b40(fw_cfg_io) count=0
864@1795611328.727773:resettable_phase_exit_end obj=0x55687a6638d0(kvmvapic) count=0
864@1795611328.727774:resettable_phase_exit_end obj=0x55687a60be30(System) count=0
864@1795611328.727857:resettable_phase_enter_begin obj=0x55687a5cc800(apic) count=0 type=0
864@1795611328.727864:resettable_phase_exit_end obj=0x55687a5cc800(apic) count=0
"""#
}
