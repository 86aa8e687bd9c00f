import LinkResetTrace
import Synchronization
import Testing
@testable import USDTProbes

@Suite struct QEMUProbeTests {
    private let strings: [Int64: String] = [0x100: "pcie-root-port", 0x200: "0000:3b:00.0", 0x300: "one", 0x400: "System",
                                            0x500: "PCIE", 0x600: "Success", 0x700: "{\"execute\": \"qom-list-types\", \"arguments\": {\"implements\": \"qmp-broker-canary-3\"}}"]

    private func hit(_ probe: QEMUProbe, _ values: [Int64]) -> QEMUProbeHit? {
        probe.hit(values: values) { strings[$0] }
    }

    @Test func aConfigWriteIsTheLogLinesEvent() {
        // The log backend's `pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40`.
        let expected = QEMUTraceLine.parse("pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40")?.event
        #expect(expected != nil)
        #expect(hit(.pciConfigWrite, [0x100, 0, 0x1c, 0, 0x3e, 0x40]) == .trace(expected!))
    }

    @Test func aConfigWriteWithAnImpossibleAddressOrUnreadableNameIsDropped() {
        #expect(hit(.pciConfigWrite, [0x100, 0, 32, 0, 0x3e, 0x40]) == nil)
        #expect(hit(.pciConfigWrite, [0x999, 0, 0x1c, 0, 0x3e, 0x40]) == nil)
        #expect(hit(.pciConfigWrite, [0x100, 0, 0x1c]) == nil)
    }

    @Test func hotResetsAndResults() {
        #expect(hit(.vfioHotReset, [0x200, 0x300]) == .trace(.vfioHotReset(host: "0000:3b:00.0", scope: .one)))
        #expect(hit(.vfioHotResetResult, [0x200, 0x600]) == .trace(.vfioHotResetResult(host: "0000:3b:00.0", result: "Success")))
    }

    @Test func onlyTheSystemBusBracketsASystemReset() {
        #expect(hit(.resetEnterBegin, [0xdead, 0x400, 0, 0]) == .trace(.systemReset(.begin)))
        #expect(hit(.resetExitEnd, [0xdead, 0x400, 0]) == .trace(.systemReset(.end)))
        #expect(hit(.resetEnterBegin, [0xdead, 0x500, 0, 0]) == nil)
    }

    @Test func theCanaryNamesTheMonitorAndReadsNoMemory() {
        let read = Mutex(0)
        #expect(QEMUProbe.qmpRequest.hit(values: [0xdead, 0x700]) { _ in read.withLock { $0 += 1 }; return nil } == .qmpRequest(monitor: 0xdead))
        #expect(read.withLock { $0 } == 0)
    }
}
