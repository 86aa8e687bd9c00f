@testable import LinkResetTrace
@testable import QMPBroker
import QMPWire
import Testing

extension GuestReset {
    /// Transcripts of attaching, checking, refreshing and detaching the tracing: each input,
    /// the actions it must produce.
    @Suite struct TraceAttachmentTests {
        enum Input: CustomStringConvertible {
            case attach, logOpened, logOpenFailed(String), answered(Int, String?), logChecked(Bool)
            case verify, tick, refresh, systemReset, topologyRead, topologyFailedByALostVMM, upstreamLost, detach

            var description: String {
                switch self {
                case .attach: "attach"
                case .logOpened: "logOpened"
                case .logOpenFailed(let reason): "logOpenFailed(\(reason))"
                case .answered(let exchange, let reply): "answered(\(exchange), \(reply ?? "nil"))"
                case .logChecked(let ours): "logChecked(\(ours))"
                case .verify: "verify"
                case .tick: "tick"
                case .refresh: "refresh"
                case .systemReset: "systemReset"
                case .topologyRead: "topologyRead"
                case .topologyFailedByALostVMM: "topologyRead(vmmReady: false)"
                case .upstreamLost: "upstreamLost"
                case .detach: "detach"
                }
            }
        }

        typealias Action = TraceAttachment.Action

        struct Step {
            let input: Input
            let expected: [Action]

            init(_ input: Input, _ expected: [Action]) {
                self.input = input
                self.expected = expected
            }
        }

        static let path = "/run/qmp-broker/vm1.trace.log"
        static let events = LinkResetTracing.traceEvents

        static func feed(_ attachment: inout TraceAttachment, _ input: Input) -> [Action] {
            switch input {
            case .attach: attachment.attach()
            case .logOpened: attachment.logOpened()
            case .logOpenFailed(let reason): attachment.logOpenFailed(reason)
            case .answered(let exchange, let reply):
                attachment.answered(exchange: exchange, reply: reply.flatMap { try? JSON.parse(Array($0.utf8)[...]) })
            case .logChecked(let ours): attachment.logChecked(stillOurs: ours)
            case .verify: attachment.verify()
            case .tick: attachment.tick()
            case .refresh: attachment.refreshTopology()
            case .systemReset: attachment.systemReset()
            case .topologyRead: attachment.topologyRead(vmmReady: true)
            case .topologyFailedByALostVMM: attachment.topologyRead(vmmReady: false)
            case .upstreamLost: attachment.upstreamLost()
            case .detach: attachment.detach()
            }
        }

        static func expectTranscript(_ attachment: inout TraceAttachment, _ steps: [Step],
                                     sourceLocation: SourceLocation = #_sourceLocation) {
            for (index, step) in steps.enumerated() {
                let actions = feed(&attachment, step.input)
                #expect(actions == step.expected, "step \(index + 1): \(step.input)", sourceLocation: sourceLocation)
            }
        }

        // MARK: replies as QEMU 7.2 writes them

        static func state(_ name: String, _ state: String) -> String {
            #"{"return": [{"name": "\#(name)", "state": "\#(state)", "vcpu": false}]}"#
        }

        static let ok = #"{"return": {}}"#
        static let logfileOK = #"{"return": ""}"#

        static func get(_ name: String) -> TracingCommand { .getTraceEventState(name: name) }
        static func enable(_ name: String) -> TracingCommand { .setTraceEventState(name: name, enable: true) }
        static func disable(_ name: String) -> TracingCommand { .setTraceEventState(name: name, enable: false) }
        static let logFile = TracingCommand.setLogFile(path: path)

        static let attaching = Action.publish(intact: false, reason: "attaching")
        static let intact = Action.publish(intact: true, reason: nil)
        static let on = Action.announce(active: true, reason: "attached")

        static func broken(_ reason: String) -> [Action] {
            [.publish(intact: false, reason: reason), .announce(active: false, reason: reason)]
        }

        /// The state queries of exchange `exchange`, every event as `states` says; the last
        /// answer sends the attach commands' first (`logfile`) in the next exchange.
        static func stateQueries(_ exchange: Int, _ states: [String: String] = [:]) -> [Step] {
            events.indices.map { index in
                let answer = state(events[index], states[events[index]] ?? "disabled")
                let next: Action = index + 1 < events.count ? .send(get(events[index + 1]), exchange: exchange)
                    : .send(logFile, exchange: exchange + 1)
                return Step(.answered(exchange, answer), [next])
            }
        }

        /// `logfile` then every switch of exchange `exchange`, all accepted; then the file is checked.
        static func attachCommands(_ exchange: Int) -> [Step] {
            [Step(.answered(exchange, logfileOK), [.send(enable(events[0]), exchange: exchange)])]
                + events.indices.map { index in
                    let next: Action = index + 1 < events.count ? .send(enable(events[index + 1]), exchange: exchange) : .checkLog
                    return Step(.answered(exchange, ok), [next])
                }
        }

        static let attachToIntact: [Step] = [
            Step(.attach, [attaching, .startTicking, .openLog]),
            Step(.logOpened, [.send(get(events[0]), exchange: 1)]),
        ] + stateQueries(1, ["vfio_pci_hot_reset": "enabled"]) + attachCommands(2) + [
            Step(.logChecked(true), [.readTopology]),
            Step(.topologyRead, [intact, on, .startFollowing]),
        ]

        @Test func attachIsOneCommandAtATimeThenTheFileThenTheTopology() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            #expect(attachment.isIntact)
            #expect(attachment.previouslyEnabled == ["vfio_pci_hot_reset"])
        }

        @Test func aRefusedLogfileBreaksTheWatchAndTheRestIsNotSent() {
            var attachment = TraceAttachment(logPath: Self.path)
            let refusal = #"{"return": "Error opening logfile /run/qmp-broker/vm1.trace.log: Permission denied\r\n"}"#
            let reason = "logfile failed: Error opening logfile /run/qmp-broker/vm1.trace.log: Permission denied"
            Self.expectTranscript(&attachment, [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.events[0]), exchange: 1)]),
            ] + Self.stateQueries(1) + [
                Step(.answered(2, refusal), [.note(.refused(command: "human-monitor-command", reason: reason))]
                     + Self.broken("QEMU refused human-monitor-command: \(reason)")),
                Step(.answered(2, Self.ok), []),  // nothing more was asked
                // The timer tries again, from opening the log.
                Step(.tick, [.publish(intact: false, reason: "QEMU refused human-monitor-command: \(reason)"),
                             .note(.reattaching), Self.attaching, .startTicking, .openLog]),
            ])
        }

        @Test func aLogThatCannotBeFollowedOrAnUnusablePathBreaksTheWatch() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpenFailed("EACCES"), Self.broken("cannot follow the trace log: EACCES")),
            ])
            var unusable = TraceAttachment(logPath: "relative.log")
            Self.expectTranscript(&unusable, [
                Step(.attach, [Self.attaching, .startTicking]
                     + Self.broken("trace log path relative.log is unusable by QEMU's logfile")),
            ])
        }

        @Test func aFileReplacedWhileQEMUOpenedItBreaksTheWatch() {
            var attachment = TraceAttachment(logPath: Self.path)
            var steps = Array(Self.attachToIntact.dropLast(2))
            steps.append(Step(.logChecked(false), Self.broken("the trace log at \(Self.path) was replaced while QEMU opened it")))
            Self.expectTranscript(&attachment, steps)
        }

        @Test func aVMMLostMidAttachFailsItThenDetachesQuietly() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.events[0]), exchange: 1)]),
                Step(.answered(1, Self.state(Self.events[0], "disabled")), [.send(Self.get(Self.events[1]), exchange: 1)]),
                // The link fails what is pending, then reports the loss.
                Step(.answered(1, nil), [.send(Self.logFile, exchange: 2)]),
                Step(.answered(2, nil), Self.broken("the VMM did not answer the tracing commands")),
                Step(.upstreamLost, [.publish(intact: false, reason: "VMM disconnected"), .stopFollowing]),
                Step(.verify, []),
            ])
        }

        @Test func aCheckFindingAnEventOffReassertsIt() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            let reason = "trace events disabled in QEMU: pci_cfg_write"
            var states = Dictionary(uniqueKeysWithValues: Self.events.map { ($0, "enabled") })
            states["pci_cfg_write"] = "disabled"
            let answers = Self.events.indices.map { index in
                Step(.answered(3, Self.state(Self.events[index], states[Self.events[index]]!)),
                     [.send(index + 1 < Self.events.count ? Self.get(Self.events[index + 1]) : Self.logFile, exchange: 3)])
            }
            Self.expectTranscript(&attachment, [
                Step(.tick, [Self.intact, .checkLog]),
                Step(.verify, []),  // checks never pile up
                Step(.logChecked(true), [.send(Self.get(Self.events[0]), exchange: 3)]),
            ] + answers + [
                Step(.answered(3, Self.logfileOK), Self.broken(reason)
                     + [.note(.reasserting), .send(Self.get(Self.events[0]), exchange: 4)]),
            ])
            #expect(attachment.watch.state == .attaching)
        }

        @Test func aReplacedLogFoundByACheckIsReattached() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            Self.expectTranscript(&attachment, [
                Step(.verify, [.checkLog]),
                Step(.logChecked(false), Self.broken("the trace log was removed or replaced")
                     + [.note(.reattaching), Self.attaching, .startTicking, .openLog]),
            ])
        }

        @Test func topologyRequestsMeanwhileAreFoldedIntoOneMoreRound() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, [
                Step(.refresh, [.readTopology]),
                Step(.refresh, []),
                Step(.systemReset, []),
                Step(.topologyRead, [.readTopology]),
                Step(.topologyRead, []),
                Step(.systemReset, [.readTopology]),
            ])
        }

        @Test func aTopologyReadFailedByALostVMMEndsNoAttach() {
            var attachment = TraceAttachment(logPath: Self.path)
            var steps = Array(Self.attachToIntact.dropLast())
            steps += [
                Step(.topologyFailedByALostVMM, []),
                Step(.upstreamLost, [.publish(intact: false, reason: "VMM disconnected"), .stopFollowing]),
            ]
            Self.expectTranscript(&attachment, steps)
            #expect(!attachment.isIntact)
        }

        @Test func anAttachWaitsForTheRefreshUnderWayAndOneMore() {
            var attachment = TraceAttachment(logPath: Self.path)
            var steps = Array(Self.attachToIntact.dropLast(2))
            steps.insert(Step(.refresh, [.readTopology]), at: 0)
            steps += [
                Step(.logChecked(true), []),
                // The round under way ends the attach; the one folded in follows.
                Step(.topologyRead, [Self.intact, Self.on, .startFollowing, .readTopology]),
                Step(.topologyRead, []),
            ]
            Self.expectTranscript(&attachment, steps)
        }

        @Test func detachUndoesTheAttachOneCommandAtATimeAndLeavesTheVMMsOwnEventsOn() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            let undo = Self.events.filter { $0 != "vfio_pci_hot_reset" }
            Self.expectTranscript(&attachment, [
                Step(.detach, [.send(Self.disable(undo[0]), exchange: 3), .publish(intact: false, reason: "broker stopping"),
                               .announce(active: false, reason: "broker stopping"), .stopFollowing]),
                Step(.answered(3, Self.ok), [.send(Self.disable(undo[1]), exchange: 3)]),
                Step(.answered(3, Self.ok), [.send(Self.disable(undo[2]), exchange: 3)]),
                Step(.answered(3, Self.ok), [.send(Self.disable(undo[3]), exchange: 3)]),
                Step(.answered(3, Self.ok), [.send(.setLogFile(path: "/dev/stderr"), exchange: 3)]),
                Step(.answered(3, Self.logfileOK), []),
            ])
        }

        @Test func aDetachWithoutAnIntactWatchSendsNothing() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, [
                Step(.detach, [.publish(intact: false, reason: "broker stopping"), .stopFollowing]),
            ])
        }
    }
}
