import Testing
@testable import USDTProbes

/// The shape of Debian's QEMU 7.2 built `--enable-trace-backends=dtrace`: text mapped at
/// file offset 0, data one segment up at a different delta (so a virtual address is not
/// its file offset), `pci_cfg_write`'s arguments as SPEC 11 quotes them.
private let qemuLike = SyntheticELF(
    segments: [(0x0, 0x0, 0x10_0000), (0x30_1000, 0x20_0000, 0x1000)],
    notes: [
        .init(name: "pci_cfg_write", address: 0x4_5678, base: 0x9_0000, semaphore: 0x30_1010,
              arguments: "8@%rcx 4@%eax 4@%edx 4@%r11d 4@%ebx 4@%esi"),
        .init(name: "handle_qmp_command", address: 0x5_0000, base: 0x9_0000, semaphore: 0x30_1012, arguments: "8@%rbx 8@(%rax)"),
        .init(name: "resettable_phase_enter_begin", address: 0x5_1000, base: 0x9_0000, semaphore: 0x30_1014,
              arguments: "8@%rbx 8@%rax -4@%edx -4@-8(%rbp)"),
        .init(name: "resettable_phase_exit_end", address: 0x5_2000, base: 0x9_0000, semaphore: 0x30_1016, arguments: "8@%rbx 8@%rax 4@%edx"),
        .init(provider: "other", name: "pci_cfg_write", address: 0x6_0000, base: 0x9_0000, arguments: ""),
    ],
    stapsdtBaseAddress: 0x9_0000)

@Suite struct USDTProbeTests {
    @Test func notesAreReadWithProviderNameAddressesAndArguments() throws {
        let probes = try USDTProbe.probes(in: ELFImage(bytes: qemuLike.bytes()))
        #expect(probes.count == 5)
        #expect(probes[0] == USDTProbe(provider: "qemu", name: "pci_cfg_write", address: 0x4_5678, base: 0x9_0000,
                                       semaphore: 0x30_1010, argumentText: "8@%rcx 4@%eax 4@%edx 4@%r11d 4@%ebx 4@%esi"))
        #expect(probes[4].provider == "other" && probes[4].argumentText.isEmpty && probes[4].semaphore == 0)
    }

    @Test func probeAndSemaphoreBecomeFileOffsetsThroughTheirLoadSegment() throws {
        let image = try ELFImage(bytes: qemuLike.bytes())
        let site = try USDTProbeSite(USDTProbe.probes(in: image)[0], in: image)
        #expect(site.fileOffset == 0x4_5678)
        #expect(site.semaphoreFileOffset == 0x20_0010)
        #expect(site.arguments.count == 6)
    }

    @Test func aPrelinkedStapsdtBaseMovesProbeAndSemaphore() throws {
        var moved = qemuLike
        moved.stapsdtBaseAddress = 0x9_1000
        let probes = try USDTProbe.probes(in: ELFImage(bytes: moved.bytes()))
        #expect(probes[0].address == 0x4_6678)
        #expect(probes[0].semaphore == 0x30_2010)
    }

    @Test func anAddressOutsideEveryLoadSegmentIsRefused() throws {
        var broken = qemuLike
        broken.notes[0].address = 0x90_0000
        let image = try ELFImage(bytes: broken.bytes())
        #expect(throws: USDTProbeSite.Failure.addressNotMapped(probe: "pci_cfg_write", address: 0x90_0000)) {
            try USDTProbeSite(USDTProbe.probes(in: image)[0], in: image)
        }
    }

    @Test func notELFIsRefused() {
        #expect(throws: ELFImage.Failure.notELF64LittleEndian) { try ELFImage(bytes: Array("#!/bin/sh\n".utf8) + [UInt8](repeating: 0, count: 64)) }
    }

    @Test func qemuSitesNeedTheRequiredProbes() throws {
        let sites = try QEMUProbeSites(image: ELFImage(bytes: qemuLike.bytes()))
        #expect(sites.sites[.pciConfigWrite]?.count == 1)  // the `other` provider's is not QEMU's
        #expect(sites.sites[.vfioHotReset] == nil)
        var without = qemuLike
        without.notes.removeFirst()
        #expect(throws: QEMUProbeSites.Unusable.missing(["pci_cfg_write"])) { try QEMUProbeSites(image: ELFImage(bytes: without.bytes())) }
        var none = qemuLike
        none.notes = []
        #expect(throws: QEMUProbeSites.Unusable.noProbes) { try QEMUProbeSites(image: ELFImage(bytes: none.bytes())) }
    }
}
