@testable import LinkResetTrace
import QMPWire
import Testing

extension GuestReset {
    /// Transcripts of attaching, checking, refreshing and detaching the tracing: each input,
    /// the actions it must produce.
    @Suite struct TraceAttachmentTests {
        enum Input: CustomStringConvertible {
            case attach, logOpened, logOpenFailed(String), answered(Int, String?), logChecked(Bool), canary(seen: Bool), holder(Bool?)
            case verify, tick, refresh, systemReset, topologyRead, topologyFailedByALostVMM, upstreamLost, detach

            var description: String {
                switch self {
                case .attach: "attach"
                case .logOpened: "logOpened"
                case .logOpenFailed(let reason): "logOpenFailed(\(reason))"
                case .answered(let exchange, let reply): "answered(\(exchange), \(reply ?? "nil"))"
                case .logChecked(let ours): "logChecked(\(ours))"
                case .canary(let seen): "canaryChecked(seen: \(seen))"
                case .holder(let holds): "logHolderChecked(holdsIt: \(holds.map(String.init) ?? "nil"))"
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
            case .canary(let seen): attachment.canaryChecked(seen: seen)
            case .holder(let holds): attachment.logHolderChecked(holdsIt: holds)
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

        /// Queries, canaries and the detach are pipelined: their commands may all go out at
        /// the step that starts the script, earlier than the transcript's step that expects
        /// each. What is checked is the order of the commands, and every other action per step.
        static func expectTranscript(_ attachment: inout TraceAttachment, _ steps: [Step],
                                     sourceLocation: SourceLocation = #_sourceLocation) {
            var sentEarly: [Action] = []
            for (index, step) in steps.enumerated() {
                let actions = feed(&attachment, step.input)
                sentEarly += actions.filter(\.isSend)
                let expectedSends = step.expected.filter(\.isSend)
                // A script that ended early (a VMM gone) leaves commands nobody will expect.
                if let exchange = expectedSends.first?.exchange {
                    sentEarly.removeAll { ($0.exchange ?? exchange) < exchange }
                }
                let sends = Array(sentEarly.prefix(expectedSends.count))
                sentEarly.removeFirst(sends.count)
                #expect(sends == expectedSends, "step \(index + 1): \(step.input): commands", sourceLocation: sourceLocation)
                #expect(actions.filter { !$0.isSend } == step.expected.filter { !$0.isSend },
                        "step \(index + 1): \(step.input)", sourceLocation: sourceLocation)
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

        static let canaryEvent = LinkResetTracing.canaryEvent
        /// What the attach's state queries ask about (patterns of the watched events, then the
        /// canary), and what a check asks.
        static let attachQueries = LinkResetTracing.watchedPatterns + [canaryEvent]
        static let checkQueries = LinkResetTracing.watchedPatterns

        /// QEMU's answer to a query of `pattern`: every event it matches, as `states` says.
        static func reply(_ pattern: String, _ states: [String: String]) -> String {
            let entries = (events + [canaryEvent]).filter { TracePattern.matches(pattern, $0) }.map {
                #"{"name": "\#($0)", "state": "\#(states[$0] ?? "disabled")", "vcpu": false}"#
            }
            return #"{"return": [\#(entries.joined(separator: ", "))]}"#
        }

        /// The queries `queries` of exchange `exchange`, answered as `states` says; the last
        /// answer is followed by `next` (by default the look at the VMM's descriptors).
        static func stateQueries(_ exchange: Int, _ states: [String: String] = [:], queries: [String] = attachQueries,
                                 then next: Action? = nil) -> [Step] {
            queries.indices.map { index in
                let following: Action = index + 1 < queries.count ? .send(get(queries[index + 1]), exchange: exchange)
                    : next ?? .checkLogHolder
                return Step(.answered(exchange, reply(queries[index], states)), [following])
            }
        }

        /// The canary pair of exchange `exchange` after its first command was sent: switch on
        /// answered, the canary (switch back) sent, answered, looked for; `then` follows.
        static func canary(_ exchange: Int, seen: Bool, then next: [Action]) -> [Step] {
            [Step(.answered(exchange, ok), [.sendCanary(disable(canaryEvent), exchange: exchange)]),
             Step(.answered(exchange, ok), [.checkCanary]),
             Step(.canary(seen: seen), next)]
        }

        /// The VMM's descriptors cannot be read, so the probe of exchange `exchange` asks:
        /// QEMU's lines do (`seen`) or do not reach the file yet, so the attach commands that
        /// follow do or do not start with `logfile`.
        static func probe(_ exchange: Int, seen: Bool) -> [Step] {
            [Step(.holder(nil), [.send(enable(canaryEvent), exchange: exchange)])]
                + canary(exchange, seen: seen, then: [.send(seen ? enable(events[0]) : logFile, exchange: exchange + 1)])
        }

        /// `logfile` (when `pointLog`) then every switch of exchange `exchange`, all accepted;
        /// the canary proves QEMU's lines arrive; then the file is checked.
        static func attachCommands(_ exchange: Int, pointLog: Bool = true) -> [Step] {
            (pointLog ? [Step(.answered(exchange, logfileOK), [.logReopened, .send(enable(events[0]), exchange: exchange)])] : [])
                + events.indices.map { index in
                    let next: Action = index + 1 < events.count ? .send(enable(events[index + 1]), exchange: exchange)
                        : .send(enable(canaryEvent), exchange: exchange)
                    return Step(.answered(exchange, ok), [next])
                }
                + canary(exchange, seen: true, then: [.checkLog])
        }

        static let attachToIntact: [Step] = [
            Step(.attach, [attaching, .startTicking, .openLog]),
            Step(.logOpened, [.send(get(attachQueries[0]), exchange: 1)]),
        ] + stateQueries(1, ["vfio_pci_hot_reset": "enabled"]) + probe(2, seen: false) + attachCommands(3) + [
            Step(.logChecked(true), [.readTopology]),
            Step(.topologyRead, [intact, on, .startFollowing]),
        ]

        /// A check of exchange `exchange` on an intact watch: the file, every state, the canary.
        static func check(_ exchange: Int, _ states: [String: String], canarySeen: Bool, then next: [Action]) -> [Step] {
            [Step(.tick, [intact, .checkLog]),
             Step(.verify, []),  // checks never pile up
             Step(.logChecked(true), [.send(get(checkQueries[0]), exchange: exchange)])]
                + stateQueries(exchange, states, queries: checkQueries, then: .send(enable(canaryEvent), exchange: exchange))
                + canary(exchange, seen: canarySeen, then: next)
        }

        static let allEnabled = Dictionary(uniqueKeysWithValues: events.map { ($0, "enabled") })

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
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 1)]),
            ] + Self.stateQueries(1) + Self.probe(2, seen: false) + [
                // QEMU closed its old log before failing to open ours: its stderr goes back at once.
                Step(.answered(3, refusal), [.note(.refused(command: "human-monitor-command", reason: reason))]
                     + Self.broken("QEMU refused human-monitor-command: \(reason)")
                     + [.send(.setLogFile(path: "/proc/self/fd/2"), exchange: 4)]),
                Step(.answered(3, Self.ok), []),  // nothing more was asked
                Step(.answered(4, Self.logfileOK), [.logReopened]),
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
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 1)]),
                Step(.answered(1, Self.reply(Self.attachQueries[0], [:])), [.send(Self.get(Self.attachQueries[1]), exchange: 1)]),
                // The link fails what is pending, then reports the loss.
                Step(.answered(1, nil), [.checkLogHolder]),
                Step(.holder(nil), [.send(Self.enable(Self.canaryEvent), exchange: 2)]),
                Step(.answered(2, nil), [.send(Self.logFile, exchange: 3)]),
                Step(.answered(3, nil), Self.broken("the VMM did not answer the tracing commands")),
                Step(.upstreamLost, [.publish(intact: false, reason: "VMM disconnected"), .stopFollowing]),
                Step(.verify, []),
            ])
        }

        @Test func aCheckFindingAnEventOffReassertsIt() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            let reason = "trace events disabled in QEMU: pci_cfg_write"
            var states = Self.allEnabled
            states["pci_cfg_write"] = "disabled"
            Self.expectTranscript(&attachment, Self.check(4, states, canarySeen: true, then: Self.broken(reason)
                + [.note(.reasserting), .send(Self.get(Self.attachQueries[0]), exchange: 5)]))
            #expect(attachment.watch.state == .attaching)
        }

        @Test func aCheckWhoseCanaryArrivesSendsNoLogfileAndChangesNothing() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            Self.expectTranscript(&attachment, Self.check(4, Self.allEnabled, canarySeen: true, then: [Self.intact]))
            #expect(attachment.isIntact)
        }

        @Test func aCheckWhoseCanaryDoesNotArriveBreaksTheWatchAndAttachesAgain() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            let reason = "QEMU's trace lines do not reach \(Self.path): the canary (monitor_qmp_cmd_in_band) did not arrive"
            Self.expectTranscript(&attachment, Self.check(4, Self.allEnabled, canarySeen: false, then: Self.broken(reason)
                + [.note(.reattaching), Self.attaching, .startTicking, .openLog]))
            // The attach again: QEMU logs elsewhere, so `logfile` goes out, and a canary proves it.
            Self.expectTranscript(&attachment, [Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 5)])]
                + Self.stateQueries(5, Self.allEnabled) + Self.probe(6, seen: false) + Self.attachCommands(7) + [
                    Step(.logChecked(true), [.readTopology]),
                    Step(.topologyRead, [Self.intact, Self.on, .startFollowing]),
                ])
        }

        @Test func aRefusedCanaryIsACanaryThatDidNotArrive() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            let unknown = #"{"error": {"class": "GenericError", "desc": "unknown event \"monitor_qmp_cmd_in_band\""}}"#
            let reason = "QEMU's trace lines do not reach \(Self.path): the canary (monitor_qmp_cmd_in_band) did not arrive"
            Self.expectTranscript(&attachment, Array(Self.check(4, Self.allEnabled, canarySeen: true, then: []).dropLast(3)) + [
                Step(.answered(4, unknown), [.sendCanary(Self.disable(Self.canaryEvent), exchange: 4)]),
                Step(.answered(4, unknown), Self.broken(reason) + [.note(.reattaching), Self.attaching, .startTicking, .openLog]),
            ])
        }

        @Test func aRestartedBrokerWhoseFileQEMUStillWritesSendsNoLogfile() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 1)]),
            ] + Self.stateQueries(1, Self.allEnabled) + Self.probe(2, seen: true) + Self.attachCommands(3, pointLog: false) + [
                Step(.logChecked(true), [.readTopology]),
                Step(.topologyRead, [Self.intact, Self.on, .startFollowing]),
            ])
        }

        @Test func aRestartedBrokerLeavesOnAtDetachOnlyWhatTheVMMHadOnItself() {
            var attachment = TraceAttachment(logPath: Self.path)
            var states = Self.allEnabled
            states[Self.canaryEvent] = "enabled"  // the VMM's own, not the broker's
            Self.expectTranscript(&attachment, [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 1)]),
            ] + Self.stateQueries(1, states))
            #expect(attachment.previouslyEnabled.isSuperset(of: Self.events))
            // QEMU already writes into the broker's file: a previous broker switched those on.
            Self.expectTranscript(&attachment, [Step(.holder(true), [.send(Self.enable(Self.events[0]), exchange: 2)])])
            #expect(attachment.previouslyEnabled == [Self.canaryEvent])
        }

        @Test func aReassertDoesNotTakeTheBrokersOwnEventsForTheVMMs() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, Self.attachToIntact)
            var states = Self.allEnabled
            states["pci_cfg_write"] = "disabled"
            Self.expectTranscript(&attachment, Self.check(4, states, canarySeen: true, then: Self.broken(
                "trace events disabled in QEMU: pci_cfg_write") + [.note(.reasserting), .send(Self.get(Self.attachQueries[0]), exchange: 5)])
                + Self.stateQueries(5, Self.allEnabled))
            #expect(attachment.previouslyEnabled == ["vfio_pci_hot_reset"])
        }

        @Test func aVMMThatHoldsTheFileIsNotPointedAtItAgainAndOneThatDoesNotIs() {
            var holding = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&holding, [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 1)]),
            ] + Self.stateQueries(1) + [Step(.holder(true), [.send(Self.enable(Self.events[0]), exchange: 2)])]
                + Self.attachCommands(2, pointLog: false) + [
                    Step(.logChecked(true), [.readTopology]),
                    Step(.topologyRead, [Self.intact, Self.on, .startFollowing]),
                ])
            var other = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&other, [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 1)]),
            ] + Self.stateQueries(1) + [Step(.holder(false), [.send(Self.logFile, exchange: 2)])] + Self.attachCommands(2))
        }

        /// QEMU closes a log it leaves through RCU, a moment later: it may still hold the file
        /// while writing elsewhere. The canary says so, and the next attach sends `logfile`.
        @Test func aHolderWhoseCanaryDoesNotArriveIsPointedAtTheFileNextTime() {
            var attachment = TraceAttachment(logPath: Self.path)
            let reason = "QEMU's trace lines do not reach \(Self.path): the canary (monitor_qmp_cmd_in_band) did not arrive"
            var steps: [Step] = [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 1)]),
            ] + Self.stateQueries(1) + [Step(.holder(true), [.send(Self.enable(Self.events[0]), exchange: 2)])]
                + Self.attachCommands(2, pointLog: false).dropLast()
            steps += [
                Step(.canary(seen: false), Self.broken(reason)),
                Step(.tick, [.publish(intact: false, reason: reason), .note(.reattaching), Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 3)]),
            ] + Self.stateQueries(3) + [Step(.holder(true), [.send(Self.logFile, exchange: 4)])]
            Self.expectTranscript(&attachment, steps)
        }

        @Test func anAttachWhoseCanaryDoesNotArriveAfterLogfileBreaksTheWatch() {
            var attachment = TraceAttachment(logPath: Self.path)
            let reason = "QEMU's trace lines do not reach \(Self.path): the canary (monitor_qmp_cmd_in_band) did not arrive"
            var steps: [Step] = [
                Step(.attach, [Self.attaching, .startTicking, .openLog]),
                Step(.logOpened, [.send(Self.get(Self.attachQueries[0]), exchange: 1)]),
            ] + Self.stateQueries(1) + Self.probe(2, seen: false) + Self.attachCommands(3).dropLast()
            steps.append(Step(.canary(seen: false), Self.broken(reason)))
            Self.expectTranscript(&attachment, steps)
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
                Step(.detach, [.send(Self.disable(undo[0]), exchange: 4), .publish(intact: false, reason: "broker stopping"),
                               .announce(active: false, reason: "broker stopping"), .stopFollowing]),
                Step(.answered(4, Self.ok), [.send(Self.disable(undo[1]), exchange: 4)]),
                Step(.answered(4, Self.ok), [.send(Self.disable(undo[2]), exchange: 4)]),
                Step(.answered(4, Self.ok), [.send(Self.disable(undo[3]), exchange: 4)]),
                Step(.answered(4, Self.ok), [.send(.setLogFile(path: "/proc/self/fd/2"), exchange: 4)]),
                Step(.answered(4, Self.logfileOK), [.logReopened, .detachFinished]),
            ])
        }

        @Test func aDetachWithoutAnIntactWatchSendsNothing() {
            var attachment = TraceAttachment(logPath: Self.path)
            Self.expectTranscript(&attachment, [
                Step(.detach, [.detachFinished, .publish(intact: false, reason: "broker stopping"), .stopFollowing]),
            ])
        }
    }
}

extension TraceAttachment.Action {
    var isSend: Bool { exchange != nil }

    var exchange: Int? {
        switch self {
        case .send(_, let exchange), .sendCanary(_, let exchange): exchange
        default: nil
        }
    }
}
