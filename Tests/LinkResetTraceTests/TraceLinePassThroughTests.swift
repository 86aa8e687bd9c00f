@testable import LinkResetTrace
import Testing

extension GuestReset {
    /// Which lines of the broker's trace log go on to QEMU's own stderr (libvirt's log):
    /// every line but the events the broker itself switched on.
    @Suite struct TraceLinePassThroughTests {
        private let passThrough = TraceLinePassThrough(
            brokerEvents: LinkResetTracing.traceEvents + [LinkResetTracing.canaryEvent], previouslyEnabled: [])

        private func passes(_ line: String, _ filter: TraceLinePassThrough? = nil) -> Bool {
            Array(line.utf8).withUnsafeBufferPointer { (filter ?? passThrough).passesOn($0) }
        }

        @Test func theBrokersOwnEventsStayInItsFile() {
            // As libvirt's QEMU writes them (-msg timestamp=on), and without the prefix.
            #expect(!passes("16170@1796612294.706989:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40"))
            #expect(!passes("pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40"))
            #expect(!passes("16170@1796612294.706989:monitor_qmp_cmd_in_band 17"))
            #expect(!passes("367@1796602490.015444:resettable_phase_enter_begin obj=0x55 objtype=System count=1 type=0"))
            #expect(!passes("2026-12-07T02:58:14.706989Z 16170@1796612294.706989:vfio_pci_hot_reset 0000:01:00.0 one"))
            #expect(!passes("\0\0\0\016170@1796612294.706989:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x0"))
        }

        @Test func anOperatorsEventsAndOtherLogOutputGoOn() {
            #expect(passes(#"16170@1796612294.706989:handle_qmp_command mon 0x55d0 req: {"execute": "qom-list"}"#))
            #expect(passes("16170@1796612294.706989:pci_cfg_read pcie-root-port 00:1c.0 @0x0 -> 0x1b361b36"))
            #expect(passes("Invalid read at addr 0xFEE00000, size 4, region '(null)', reason: rejected"))
            #expect(passes("vfio_err_notifier_handler(0000:01:00.0) Unrecoverable error detected."))
            #expect(!passes("\0\0\0\0"))
            #expect(!passes(""))
        }

        @Test func anEventTheVMMHadOnBeforeTheBrokerGoesOnToo() {
            let filter = TraceLinePassThrough(brokerEvents: LinkResetTracing.traceEvents + [LinkResetTracing.canaryEvent],
                                              previouslyEnabled: ["pci_cfg_write"])
            #expect(passes("16170@1796612294.706989:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40", filter))
            #expect(!passes("16170@1796612294.706989:monitor_qmp_cmd_in_band 17", filter))
        }
    }
}
