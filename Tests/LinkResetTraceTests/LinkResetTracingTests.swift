@testable import LinkResetTrace
@testable import QMPWire
import Testing

extension GuestReset {
    /// The attach/detach command lists and the checks of QEMU 7.2's real replies.
    @Suite struct LinkResetTracingTests {
        @Test func attachSetsTheLogFileBeforeEnablingEvents() {
            let commands = LinkResetTracing.attachCommands(logPath: "/run/qmp-broker/vm1/trace.log", pointLog: true)
            #expect(commands.first == .setLogFile(path: "/run/qmp-broker/vm1/trace.log"))
            #expect(commands.dropFirst() == LinkResetTracing.traceEvents.map { .setTraceEventState(name: $0, enable: true) }[...])
            #expect(commands.map(\.message.description) == [
                #"{"execute": "human-monitor-command", "arguments": {"command-line": "logfile \"/run/qmp-broker/vm1/trace.log\""}}"#,
                #"{"execute": "trace-event-set-state", "arguments": {"name": "pci_cfg_write", "enable": true}}"#,
                #"{"execute": "trace-event-set-state", "arguments": {"name": "vfio_pci_hot_reset", "enable": true}}"#,
                #"{"execute": "trace-event-set-state", "arguments": {"name": "vfio_pci_hot_reset_result", "enable": true}}"#,
                #"{"execute": "trace-event-set-state", "arguments": {"name": "resettable_phase_enter_begin", "enable": true}}"#,
                #"{"execute": "trace-event-set-state", "arguments": {"name": "resettable_phase_exit_end", "enable": true}}"#,
            ])
        }

        @Test func anAttachToAFileQEMUAlreadyWritesSendsNoLogfile() {
            #expect(LinkResetTracing.attachCommands(logPath: "/run/qmp-broker/vm1/trace.log", pointLog: false)
                == LinkResetTracing.traceEvents.map { .setTraceEventState(name: $0, enable: true) })
        }

        @Test func theCanaryIsSwitchedOnThenBackToWhatTheVMMHad() {
            #expect(LinkResetTracing.canaryCommands(previouslyEnabled: []).map(\.message.description) == [
                #"{"execute": "trace-event-set-state", "arguments": {"name": "monitor_qmp_cmd_in_band", "enable": true}}"#,
                #"{"execute": "trace-event-set-state", "arguments": {"name": "monitor_qmp_cmd_in_band", "enable": false}}"#,
            ])
            #expect(LinkResetTracing.canaryCommands(previouslyEnabled: ["monitor_qmp_cmd_in_band"]).last
                == .setTraceEventState(name: "monitor_qmp_cmd_in_band", enable: true))
            #expect(LinkResetTracing.stateQueries.last == .getTraceEventState(name: "monitor_qmp_cmd_in_band"))
        }

        @Test func detachLeavesTheVMMsOwnEventsOnAndRestoresItsLog() {
            let commands = LinkResetTracing.detachCommands(previouslyEnabled: ["pci_cfg_write"], restoreLogTo: "/dev/stderr")
            #expect(commands == [
                .setTraceEventState(name: "vfio_pci_hot_reset", enable: false),
                .setTraceEventState(name: "vfio_pci_hot_reset_result", enable: false),
                .setTraceEventState(name: "resettable_phase_enter_begin", enable: false),
                .setTraceEventState(name: "resettable_phase_exit_end", enable: false),
                .setLogFile(path: "/dev/stderr"),
            ])
        }

        @Test func stateQueriesAndTheirReplies() throws {
            #expect(LinkResetTracing.stateQueries.first?.message.description
                == #"{"execute": "trace-event-get-state", "arguments": {"name": "pci_cfg_write"}}"#)
            // Replies as QEMU 7.2.22 gave them.
            let replies = try [
                #"{"return": [{"name": "pci_cfg_write", "vcpu": false, "state": "enabled"}]}"#,
                #"{"return": [{"name": "vfio_pci_hot_reset", "vcpu": false, "state": "disabled"}]}"#,
                #"{"return": [{"name": "x", "vcpu": false, "state": "unavailable"}]}"#,
            ].map { try JSON.parse($0) }
            for reply in replies { #expect(TracingCommand.getTraceEventState(name: "x").check(reply: reply) == nil) }
            #expect(LinkResetTracing.previouslyEnabled(fromReplies: replies) == ["pci_cfg_write"])
            #expect(TracingCommand.traceEventStates(fromReply: replies[1]) == ["vfio_pci_hot_reset": false])
        }

        @Test func replyChecks() throws {
            let logfile = TracingCommand.setLogFile(path: "/x")
            #expect(logfile.check(reply: try JSON.parse(#"{"return": ""}"#)) == nil)
            // HMP failures are text in a successful reply.
            #expect(logfile.check(reply: try JSON.parse(
                #"{"return": "Error opening logfile /nonexistent/x.log: No such file or directory\r\n"}"#))?.description
                == "logfile failed: Error opening logfile /nonexistent/x.log: No such file or directory")
            #expect(logfile.check(reply: try JSON.parse(
                #"{"return": "logfile: extraneous characters at the end of line\r\nTry \"help logfile\" for more information\r\n"}"#)) != nil)
            let enable = TracingCommand.setTraceEventState(name: "no_such_event", enable: true)
            #expect(enable.check(reply: try JSON.parse(#"{"return": {}}"#)) == nil)
            #expect(enable.check(reply: try JSON.parse(
                #"{"error": {"class": "GenericError", "desc": "unknown event \"no_such_event\""}}"#))?.description
                == #"trace-event-set-state failed: unknown event "no_such_event""#)
            #expect(enable.check(reply: try JSON.parse(#"{"id": 1}"#)) != nil)
            #expect(TracingCommand.getTraceEventState(name: "x").check(reply: try JSON.parse(#"{"return": {}}"#)) != nil)
        }

        @Test func usableLogPaths() {
            #expect(LinkResetTracing.isUsableLogPath("/run/qmp-broker/vm1/trace.log"))
            #expect(LinkResetTracing.isUsableLogPath("/tmp/with space/trace.log"))  // quoted, verified on 7.2
            for bad in ["trace.log", "/a\"b", "/a\\b", "/trace-%d.log", "/a\nb", ""] {
                #expect(!LinkResetTracing.isUsableLogPath(bad), "\(bad)")
            }
        }
    }
}
