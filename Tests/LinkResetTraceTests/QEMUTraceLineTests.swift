@testable import LinkResetTrace
import Testing

extension GuestReset {
    /// The trace parser on lines captured from QEMU 7.2.22.
    @Suite struct QEMUTraceLineTests {
        let rootPort = GuestPCIAddress(bus: 0, slot: 0x1C, function: 0)

        @Test func plainConfigWrite() throws {
            let line = try #require(QEMUTraceLine.parse(CapturedTraceLines.plainWrite))
            #expect(line.origin == nil)
            #expect(line.event == .configWrite(PCIConfigAccess(model: "pcie-root-port", address: rootPort, offset: 0x3E, value: 0x40)))
        }

        @Test func timestampedConfigWrite() throws {
            let line = try #require(QEMUTraceLine.parse(CapturedTraceLines.stampedWrite))
            #expect(line.origin == QEMUTraceLine.Origin(threadID: 12968, seconds: 1_795_610_769, microseconds: 786_173))
            #expect(line.event == .configWrite(PCIConfigAccess(model: "pcie-root-port", address: rootPort, offset: 0x3E, value: 0x40)))
        }

        @Test func configRead() throws {
            let line = try #require(QEMUTraceLine.parse(CapturedTraceLines.stampedRead))
            #expect(line.event == .configRead(PCIConfigAccess(model: "pcie-root-port", address: rootPort, offset: 0x3E, value: 0x40)))
        }

        @Test func switchPortsAndGuestLines() throws {
            #expect(QEMUTraceLine.parse(CapturedTraceLines.switchBusNumbers)?.event == .configWrite(PCIConfigAccess(
                model: "x3130-upstream", address: GuestPCIAddress(bus: 2, slot: 0, function: 0), offset: 0x18, value: 0x40302)))
            #expect(QEMUTraceLine.parse(CapturedTraceLines.downstreamPortReset)?.event == .configWrite(PCIConfigAccess(
                model: "xio3130-downstream", address: GuestPCIAddress(bus: 3, slot: 0, function: 0), offset: 0x3E, value: 0x40)))
            #expect(QEMUTraceLine.parse(CapturedTraceLines.guestAssert)?.event == .configWrite(PCIConfigAccess(
                model: "pcie-root-port", address: GuestPCIAddress(bus: 0, slot: 1, function: 0), offset: 0x3E, value: 0x42)))
        }

        @Test func everyLineOfACapturedSessionParsesOrIsForeign() throws {
            let lines = CapturedTraceLines.session.split(separator: "\n").map(String.init)
            let parsed = lines.compactMap(QEMUTraceLine.parse)
            let writes = parsed.compactMap { line -> PCIConfigAccess? in
                if case .configWrite(let write) = line.event { return write } else { return nil }
            }
            #expect(writes.map(\.offset) == [0x18, 0x3C, 0x3E, 0x3E, 0x3C, 0x3C, 0x3C, 0x3C])
            #expect(writes.map(\.value) == [0x10100, 0xB, 0x42, 0x2, 0x420000, 0xB, 0x420000, 0x20000])
            #expect(parsed.map(\.event).filter { if case .systemReset = $0 { true } else { false } }
                == [.systemReset(.begin), .systemReset(.end)])
            // The other 92 lines are resettable phases of objects other than the system bus.
            #expect(parsed.count == 10)
            #expect(parsed.allSatisfy { $0.origin?.threadID == 864 })
        }

        @Test func vfioHotResetLines() {
            #expect(QEMUTraceLine.parse(CapturedTraceLines.hotResetOne)?.event == .vfioHotReset(host: "0000:3b:00.0", scope: .one))
            let multi = QEMUTraceLine.parse(CapturedTraceLines.hotResetMulti)
            #expect(multi?.event == .vfioHotReset(host: "0000:3b:00.0", scope: .multi))
            #expect(multi?.origin?.threadID == 4242)
            #expect(QEMUTraceLine.parse(CapturedTraceLines.hotResetSuccess)?.event
                == .vfioHotResetResult(host: "0000:3b:00.0", result: "Success"))
            #expect(QEMUTraceLine.parse(CapturedTraceLines.hotResetFailure)?.event
                == .vfioHotResetResult(host: "0000:3b:00.0", result: "Device or resource busy"))
        }

        @Test func systemBusBracket() {
            #expect(QEMUTraceLine.parse("resettable_phase_enter_begin obj=0x55f901af5100(System) count=0 type=0")?.event
                == .systemReset(.begin))
            #expect(QEMUTraceLine.parse("resettable_phase_exit_end obj=0x55f901af5100(System) count=0")?.event
                == .systemReset(.end))
            // %p prints a null pointer as "(nil)"; the type is the last parenthesised part.
            #expect(QEMUTraceLine.parse("resettable_phase_exit_end obj=(nil)(System) count=0")?.event == .systemReset(.end))
        }

        @Test func theCanaryLineCarriesTheCommandsID() {
            #expect(QEMUTraceLine.parse("monitor_qmp_cmd_in_band 17")?.event == .qmpCommandInBand(id: "17"))
            #expect(QEMUTraceLine.parse("4242@1796602490.015444:monitor_qmp_cmd_in_band \"__qmp#00001\"")?.event
                == .qmpCommandInBand(id: "\"__qmp#00001\""))
            // A command without an id traces an empty string: nothing to match a canary by.
            #expect(QEMUTraceLine.parse("monitor_qmp_cmd_in_band ") == nil)
            #expect(QEMUTraceLine.parse("monitor_qmp_cmd_in_band_x 17") == nil)
        }

        /// QEMU ≥ 8 writes its log without O_APPEND: after someone truncates the file, the next
        /// line lands at QEMU's old offset, behind a run of NUL bytes.
        @Test func aLineBehindAHoleOfNULBytesStillParses() {
            let write = QEMUTraceLine.parse(CapturedTraceLines.plainWrite)
            #expect(write != nil)
            #expect(QEMUTraceLine.parse(Array(repeating: 0, count: 300) + Array(CapturedTraceLines.plainWrite.utf8)[...]) == write)
        }

        @Test func foreignLinesAreNil() {
            for line in CapturedTraceLines.foreign { #expect(QEMUTraceLine.parse(line) == nil, "\(line)") }
        }

        @Test func toleratesLineEndsBlanksAndAWallClockPrefix() {
            let write = QEMUTraceLine.parse(CapturedTraceLines.plainWrite)
            #expect(QEMUTraceLine.parse(CapturedTraceLines.plainWrite + "\n") == write)
            #expect(QEMUTraceLine.parse(CapturedTraceLines.plainWrite + "\r\n") == write)
            #expect(QEMUTraceLine.parse("  " + CapturedTraceLines.plainWrite + "  ") == write)
            // Newer QEMUs put an ISO 8601 stamp before every qemu_log line.
            #expect(QEMUTraceLine.parse("2025-05-20T10:00:00.123456Z " + CapturedTraceLines.plainWrite) == write)
            #expect(QEMUTraceLine.parse("2025-05-20T10:00:00.123456Z " + CapturedTraceLines.stampedWrite)?.origin?.threadID == 12968)
            #expect(QEMUTraceLine.parse(Array(CapturedTraceLines.plainWrite.utf8)[...]) == write)
        }

        @Test func malformedLinesAreNil() {
            let malformed = [
                "pci_cfg_write",
                "pci_cfg_write pcie-root-port",
                "pci_cfg_write 00:1c.0 @0x3e <- 0x40",                      // no model
                "pci_cfg_write pcie-root-port 00:1c.0 @0x3e -> 0x40",       // read arrow on a write
                "pci_cfg_write pcie-root-port 00:1c.0 0x3e <- 0x40",        // no @
                "pci_cfg_write pcie-root-port 00:20.0 @0x3e <- 0x40",       // slot 32
                "pci_cfg_write pcie-root-port 00:1c.8 @0x3e <- 0x40",       // function 8
                "pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x123456789", // over 32 bits
                "pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0xg",
                "pci_cfg_write pcie-root-port 00:1c.0 @0x1000 <- 0x1",      // beyond extended config space
                "pci_cfg_writer pcie-root-port 00:1c.0 @0x3e <- 0x40",
                "x pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40",     // non-numeric prefix
                "12968@1795610769:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40", // no microseconds
                "12968@1795610769.786173:",
                "vfio_pci_hot_reset  (0000:3b:00.0) some",
                "vfio_pci_hot_reset  () one",
                "vfio_pci_hot_reset  0000:3b:00.0 one",
                "vfio_pci_hot_reset_result 0000:3b:00.0 hot reset:",
                "resettable_phase_enter_begin obj=0x1(System count=0 type=0",
            ]
            for line in malformed { #expect(QEMUTraceLine.parse(line) == nil, "\(line)") }
        }

        @Test func guestAddressText() {
            #expect(GuestPCIAddress("00:1c.0") == rootPort)
            #expect(GuestPCIAddress("0:1C.0") == rootPort)
            #expect(GuestPCIAddress("ff:1f.7")?.description == "ff:1f.7")
            #expect(rootPort.description == "00:1c.0")
            for bad in ["", "00:1c", "001c.0", "00:1c.", "000:1c.0", "00:1c.10", "0000:00:1c.0"] {
                #expect(GuestPCIAddress(bad) == nil, "\(bad)")
            }
            #expect(GuestPCIAddress(bus: 1, slot: 0, function: 0) > rootPort)
        }
    }
}
