@testable import LinkResetTrace
import Testing

extension GuestReset {
    /// What a client may not do to QEMU's tracing while the broker watches it.
    @Suite struct TraceGuardTests {
        let watched = LinkResetTracing.traceEvents

        private func setState(_ name: String, _ enable: Bool) -> TraceGuard.Verdict {
            TraceGuard.verdict(command: "trace-event-set-state",
                               arguments: .object(["name": .string(name), "enable": .bool(enable)]), watched: watched)
        }

        private func hmp(_ line: String) -> TraceGuard.Verdict {
            TraceGuard.verdict(command: "human-monitor-command",
                               arguments: .object(["command-line": .string(line)]), watched: watched)
        }

        @Test func disablingAWatchedEventIsRefusedByNameOrPattern() {
            let refusal = TraceGuard.Verdict.refuse(.watchedEvent("pci_cfg_write"))
            #expect(setState("pci_cfg_write", false) == refusal)
            #expect(setState("pci_*", false) == refusal)
            #expect(setState("*", false) == refusal)
            #expect(setState("pci_cfg_writ?", false) == refusal)
            #expect(setState("*hot_reset", false) == .refuse(.watchedEvent("vfio_pci_hot_reset")))
            if case .refuse(let error) = refusal {
                #expect(error.errorClass == .genericError)
                #expect(error.desc.hasPrefix("Trace event 'pci_cfg_write' is watched by qmp-broker"))
            }
        }

        @Test func otherTraceChangesGoThroughAndAreCheckedAfter() {
            #expect(setState("pci_cfg_write", true) == .forwardThenVerify)
            #expect(setState("pci_cfg_read", false) == .forwardThenVerify)
            #expect(setState("pci_cfg_write*x", false) == .forwardThenVerify)
            #expect(TraceGuard.verdict(command: "trace-event-set-state", arguments: .object(["name": .string("*")]),
                                       watched: watched) == .forwardThenVerify)
            #expect(TraceGuard.verdict(command: "query-status", arguments: nil, watched: watched) == .forward)
        }

        @Test func hmpLogfileAndTraceEventOffAreRefused() {
            #expect(hmp("logfile /elsewhere").isRefusal)
            #expect(hmp("   logfile \"/some where\"").isRefusal)
            #expect(hmp("trace-event pci_cfg_write off") == .refuse(.watchedEvent("pci_cfg_write")))
            #expect(hmp("trace-event pci* off") == .refuse(.watchedEvent("pci_cfg_write")))
            #expect(hmp("trace-event \"*\" off").isRefusal)
            #expect(hmp("log trace:-pci_cfg_write") == .refuse(.watchedEvent("pci_cfg_write")))
            #expect(hmp("log guest_errors,trace:-resettable*") == .refuse(.watchedEvent("resettable_phase_enter_begin")))
        }

        @Test func harmlessHMPIsForwarded() {
            // `log none` keeps LOG_TRACE (measured on 7.2.22): checked after, not refused.
            #expect(hmp("log none") == .forwardThenVerify)
            #expect(hmp("trace-event pci_cfg_write on") == .forwardThenVerify)
            #expect(hmp("trace-event pci_cfg_read off") == .forwardThenVerify)
            #expect(hmp("info status") == .forward)
            #expect(hmp("logfilex /x") == .forward)
            #expect(hmp("") == .forward)
        }

        @Test func patternsFollowQEMUsSimpleMatch() {
            #expect(TracePattern.matches("*", ""))
            #expect(TracePattern.matches("a*b*c", "aXXbYYc"))
            #expect(!TracePattern.matches("a*b*c", "aXXbYY"))
            #expect(!TracePattern.matches("?", ""))
            #expect(TracePattern.matches("**", "abc"))
        }

        @Test func hmpWordsKeepQuotedBlanks() {
            #expect(HMPWords("  logfile  \"/a b\"  x").words == ["logfile", "/a b", "x"])
            #expect(HMPWords("\"\"").words == [""])
        }
    }
}

extension TraceGuard.Verdict {
    var isRefusal: Bool {
        if case .refuse = self { return true }
        return false
    }
}
