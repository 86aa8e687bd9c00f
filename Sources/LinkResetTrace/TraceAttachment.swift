import QMPWire

/// Attaching QEMU's tracing to the broker's log file, keeping it attached, and letting it
/// go, as a value: inputs from the VMM, the log file and the timer come in; commands to
/// send and things to do go out. `LinkResetWatcher` runs the actions; the watch's own
/// state (`LinkResetWatch`) says whether resets are seen and what was announced.
///
/// Attaching is a script: the state queries (what the VMM had on), then whether QEMU
/// already writes into the broker's file (a restarted broker finds it does: QEMU holds it
/// open, or, where that cannot be read, a canary arrives), then `logfile` only when it does
/// not, and the event switches (one at a time, each reply checked: the attach stops at the
/// first refusal), then the canary that proves the lines arrive, a check that the file at
/// the path is still the broker's, and the topology. Checking is the state queries plus the
/// canary, sent at once: no `logfile`, which QEMU ≥ 8 answers by truncating the file. At most one
/// script runs; each carries an exchange number so a reply from an abandoned one is ignored.
package struct TraceAttachment {
    package enum Action: Equatable, Sendable {
        /// Send one command; its reply comes back as `answered(exchange:reply:)`.
        case send(TracingCommand, exchange: Int)
        /// Send the canary command: note its id and where the trace log ends now. Its reply
        /// comes back as `answered(exchange:reply:)`, then `checkCanary` asks whether QEMU
        /// traced it into the file.
        case sendCanary(TracingCommand, exchange: Int)
        /// Whether the canary's line (`monitor_qmp_cmd_in_band <its id>`) is in the file
        /// since it was sent; answer `canaryChecked(seen:)`.
        case checkCanary
        /// QEMU answered `logfile`: it reopened the file, and QEMU ≥ 8 truncated it. The
        /// reader starts again from the top if the file is now shorter than before.
        case logReopened
        /// The detach asked for is done: every command answered (or the VMM gone).
        case detachFinished
        /// Whether the VMM holds the trace log open (its `/proc/PID/fd`); answer
        /// `logHolderChecked(holdsIt:)`, nil when that cannot be read.
        case checkLogHolder
        /// Open (follow) the trace log; answer `logOpened()` or `logOpenFailed(_:)`.
        case openLog
        /// Whether the path still names the file the broker reads; answer `logChecked(stillOurs:)`.
        case checkLog
        /// Read `query-pci` and each watched device's bridges; answer `topologyRead(vmmReady:)`.
        case readTopology
        /// Judge what QEMU logged while the broker was away, then save the position.
        case startFollowing
        /// Stop the timer and close the log.
        case stopFollowing
        /// Start the periodic `tick` (idempotent).
        case startTicking
        /// The watch's state changed: `query-broker` and `query-vfio-devices` show it.
        case publish(intact: Bool, reason: String?)
        /// `BROKER_LINK_RESET_WATCH {active, reason}`, and a log line.
        case announce(active: Bool, reason: String)
        /// For the log only.
        case note(Note)
    }

    package enum Note: Equatable, Sendable {
        case reasserting
        case reattaching
        case refused(command: String, reason: String)
    }

    private enum Phase: Equatable {
        case idle
        case openingLog
        case running(Script)
        /// The canary command was answered: is its line in the file?
        case checkingCanary(Script)
        /// Does the VMM hold the file open already?
        case checkingLogHolder
        /// Attach commands done: is QEMU writing into the broker's file?
        case confirmingLog
        /// A check was asked for: is the file still the broker's?
        case checkingLogBeforeVerify
    }

    private struct Script: Equatable {
        enum Kind: Equatable {
            case stateQueries
            /// The canary alone, before `logfile`, where the VMM's descriptors cannot be read:
            /// does QEMU already write into the file?
            case probe
            case attachCommands(pointLog: Bool)
            case verify
            /// Undoing the attach, best effort: replies are not judged.
            case detach
            /// A refused `logfile` left QEMU logging nowhere: its stderr back, at once.
            case restoreLog
        }

        let kind: Kind
        let commands: [TracingCommand]
        let exchange: Int
        /// Which command is the canary (the last of the canary pair), if the script has one.
        let canaryIndex: Int?
        var replies: [JSON] = []
        /// Commands sent so far.
        var sent = 0
        /// Whether the canary's line arrived; nil until it was looked for.
        var canarySeen: Bool?

        /// Queries, the canary and the detach go out at once (QEMU answers in-band commands
        /// in order: one wakeup for the lot); the attach waits for each answer, as it stops
        /// at the first refusal.
        var pipelined: Bool { if case .attachCommands = kind { false } else { true } }

        var next: TracingCommand? { replies.count < commands.count ? commands[replies.count] : nil }
        var nextIsCanary: Bool { replies.count == canaryIndex }
        /// Attach commands stop at the first refusal; queries take what they get.
        var checked: Bool { if case .attachCommands = kind { true } else { false } }
    }

    package let logPath: String
    package private(set) var watch = LinkResetWatch()
    private var phase = Phase.idle
    private var exchange = 0
    private var vmmReady = false
    /// Events the VMM had on before the broker attached: left on at detach.
    package private(set) var previouslyEnabled: Set<String> = []
    private var refreshing = false
    private var refreshAgain = false
    /// The attach ends once the topology being read now is in.
    private var attachAwaitsTopology = false
    /// Whether this VMM was sent the attach commands: only then has detaching anything to undo.
    private var changedVMM = false
    /// The last attach skipped `logfile` and its canary did not arrive: the next one sends it.
    private var pointLogNextTime = false

    package init(logPath: String) {
        self.logPath = logPath
    }

    package var isIntact: Bool { watch.isIntact }

    // MARK: inputs

    /// The VMM is (again) ready: follow the log file and switch tracing on.
    package mutating func attach() -> [Action] {
        vmmReady = true
        return startAttach()
    }

    private mutating func startAttach() -> [Action] {
        var actions = watchDid(watch.attachStarted()) + [.startTicking]
        guard LinkResetTracing.isUsableLogPath(logPath) else {
            phase = .idle
            return actions + watchDid(watch.attachFailed("trace log path \(logPath) is unusable by QEMU's logfile"))
        }
        phase = .openingLog
        actions.append(.openLog)
        return actions
    }

    package mutating func logOpened() -> [Action] {
        guard phase == .openingLog else { return [] }
        return start(.stateQueries)
    }

    package mutating func logOpenFailed(_ reason: String) -> [Action] {
        guard phase == .openingLog else { return [] }
        phase = .idle
        return watchDid(watch.attachFailed("cannot follow the trace log: \(reason)"))
    }

    /// The reply to `send(_, exchange:)`; nil when the VMM could not answer or its reply is unreadable.
    package mutating func answered(exchange: Int, reply: JSON?) -> [Action] {
        guard case .running(var script) = phase, script.exchange == exchange, let command = script.next else { return [] }
        guard let reply else { return finish(script, failure: nil) }
        let failure = command.check(reply: reply)
        if script.checked, let failure {
            // The reason reaches the watch, which announces (and logs) it once.
            return [.note(.refused(command: command.name, reason: "\(failure)"))]
                + finish(script, failure: "QEMU refused \(command.name): \(failure)")
        }
        let wasCanary = script.nextIsCanary
        script.replies.append(reply)
        var actions: [Action] = []
        if case .setLogFile = command, failure == nil { actions.append(.logReopened) }
        if wasCanary {
            // A refused canary (no such event: a QEMU without the log backend) proves nothing.
            guard failure == nil else {
                script.canarySeen = false
                return actions + proceed(script)
            }
            phase = .checkingCanary(script)
            return actions + [.checkCanary]
        }
        return actions + proceed(script)
    }

    /// What the canary's line said: `seen` when it was in the file by the time its reply came.
    package mutating func canaryChecked(seen: Bool) -> [Action] {
        guard case .checkingCanary(var script) = phase else { return [] }
        script.canarySeen = seen
        return proceed(script)
    }

    /// The script's next command (all of them, pipelined), or its end.
    private mutating func proceed(_ script: Script) -> [Action] {
        guard script.next != nil else { return finish(script, failure: nil) }
        var script = script
        var actions: [Action] = []
        let upTo = script.pipelined ? script.commands.count : script.replies.count + 1
        while script.sent < upTo {
            let command = script.commands[script.sent]
            actions.append(script.sent == script.canaryIndex ? .sendCanary(command, exchange: script.exchange)
                                                              : .send(command, exchange: script.exchange))
            script.sent += 1
        }
        phase = .running(script)
        return actions
    }

    package mutating func logChecked(stillOurs: Bool) -> [Action] {
        switch phase {
        case .confirmingLog:
            // QEMU opened the path itself: it must still be the file the broker reads.
            guard stillOurs else {
                phase = .idle
                return watchDid(watch.attachFailed("the trace log at \(logPath) was replaced while QEMU opened it"))
            }
            phase = .idle
            // Watching starts once QEMU traces and the topology says which bridges matter.
            attachAwaitsTopology = true
            return refreshTopology()
        case .checkingLogBeforeVerify:
            guard stillOurs else {
                phase = .idle
                return watchDid(watch.logReplaced())
            }
            return start(.verify)
        case .idle, .openingLog, .running, .checkingCanary, .checkingLogHolder:
            return []
        }
    }

    /// Whether the VMM holds the trace log open: it does when it already logs there (a
    /// restarted broker's VMM), and then pointing it at the file again would only truncate
    /// it (QEMU ≥ 8). nil: its descriptors cannot be read, so a canary asks instead.
    package mutating func logHolderChecked(holdsIt: Bool?) -> [Action] {
        guard phase == .checkingLogHolder else { return [] }
        phase = .idle
        guard let holdsIt else { return start(.probe) }
        return attachCommands(alreadyLogging: holdsIt)
    }

    private mutating func attachCommands(alreadyLogging: Bool) -> [Action] {
        // At a first attach, QEMU already logging here means a previous broker attached:
        // the watched events on are its own, not the VMM's.
        if alreadyLogging && !changedVMM { previouslyEnabled.subtract(LinkResetTracing.traceEvents) }
        let pointLog = !alreadyLogging || pointLogNextTime
        pointLogNextTime = false
        return start(.attachCommands(pointLog: pointLog))
    }

    /// Asks QEMU whether the watched events are still on (after a client command that
    /// could have changed them, and periodically), re-asserting them when not, and proves
    /// that trace lines still reach the broker's file with the canary: a redirect made
    /// behind the broker's back (QEMU's own monitor), a file truncated or replaced, a QEMU
    /// that stopped logging, each shows as a canary that does not arrive, and the watch is
    /// broken and attached again. Checks never pile up behind a VMM that is slow to answer.
    package mutating func verify() -> [Action] {
        guard watch.isIntact, vmmReady, phase == .idle else { return [] }
        phase = .checkingLogBeforeVerify
        return [.checkLog]
    }

    /// The periodic timer while a VMM is attached.
    package mutating func tick() -> [Action] { watchDid(watch.tick()) }

    /// Re-read the topology (a watched device was added, a reset moved bus numbers).
    /// Requests arriving meanwhile are folded into one more round.
    package mutating func refreshTopology() -> [Action] {
        guard !refreshing else {
            refreshAgain = true
            return []
        }
        refreshing = true
        return [.readTopology]
    }

    /// A system reset (QMP `RESET`): bus numbers may change.
    package mutating func systemReset() -> [Action] { refreshTopology() }

    /// `vmmReady`: whether the VMM is still attached now. The link fails what is pending
    /// before it reports the loss, so a read failed by a lost VMM ends before `upstreamLost`.
    package mutating func topologyRead(vmmReady: Bool) -> [Action] {
        refreshing = false
        var actions: [Action] = []
        if attachAwaitsTopology {
            attachAwaitsTopology = false
            if vmmReady && !watch.isIntact {
                actions += watchDid(watch.attached()) + [.startFollowing]
            }
        }
        if refreshAgain {
            refreshAgain = false
            actions += refreshTopology()
        }
        return actions
    }

    /// The VMM went away: its log target went with it.
    package mutating func upstreamLost() -> [Action] {
        vmmReady = false
        changedVMM = false
        phase = .idle
        return watchDid(watch.detached("VMM disconnected")) + [.stopFollowing]
    }

    /// The broker is stopping: switch off what it switched on and give QEMU's log back (to
    /// its stderr: the broker cannot learn a VMM's `-D`), the commands sent at once and
    /// each answered; `detachFinished` says when. Stops following at once.
    package mutating func detach() -> [Action] {
        phase = .idle
        let actions = changedVMM && vmmReady ? start(.detach) : [.detachFinished]
        changedVMM = false
        return actions + watchDid(watch.detached("broker stopping")) + [.stopFollowing]
    }

    // MARK: scripts

    private mutating func start(_ kind: Script.Kind) -> [Action] {
        exchange += 1
        let canary = LinkResetTracing.canaryCommands(previouslyEnabled: previouslyEnabled)
        let commands: [TracingCommand] = switch kind {
        case .stateQueries: LinkResetTracing.stateQueries
        case .probe: canary
        // The canary proves QEMU writes into the file, with or without a `logfile` now.
        case .attachCommands(let pointLog): LinkResetTracing.attachCommands(logPath: logPath, pointLog: pointLog) + canary
        case .verify: LinkResetTracing.checkQueries + canary
        case .detach: LinkResetTracing.detachCommands(previouslyEnabled: previouslyEnabled,
                                                      restoreLogTo: LinkResetTracing.vmmStderr)
        case .restoreLog: [TracingCommand.setLogFile(path: LinkResetTracing.vmmStderr)]
        }
        if case .attachCommands = kind { changedVMM = true }
        let hasCanary = switch kind {
        case .probe, .verify, .attachCommands: true
        case .stateQueries, .detach, .restoreLog: false
        }
        let script = Script(kind: kind, commands: commands, exchange: exchange,
                            canaryIndex: hasCanary ? commands.count - 1 : nil)
        return proceed(script)
    }

    private mutating func finish(_ script: Script, failure: String?) -> [Action] {
        phase = .idle
        switch script.kind {
        case .stateQueries:
            // What the VMM had on before the broker touched it; a re-attach finds the broker's own.
            if !changedVMM { previouslyEnabled = LinkResetTracing.previouslyEnabled(fromReplies: script.replies) }
            phase = .checkingLogHolder
            return [.checkLogHolder]
        case .probe:
            return attachCommands(alreadyLogging: script.canarySeen == true)
        case .attachCommands(let pointLog):
            guard script.replies.count == script.commands.count else {
                let actions = watchDid(watch.attachFailed(failure ?? "the VMM did not answer the tracing commands"))
                // QEMU closed its old log before it failed to open ours: it logs nowhere now.
                if failure != nil, case .setLogFile? = script.next { return actions + start(.restoreLog) }
                return actions
            }
            if script.canarySeen != true {
                pointLogNextTime = !pointLog
                return watchDid(watch.attachFailed(Self.canaryMissing(logPath)))
            }
            phase = .confirmingLog
            return [.checkLog]
        case .verify:
            guard script.replies.count == script.commands.count else { return [] }
            var states: [String: Bool] = [:]
            for reply in script.replies.prefix(LinkResetTracing.checkQueries.count) {
                states.merge(TracingCommand.traceEventStates(fromReply: reply)) { $1 }
            }
            let disabled = LinkResetTracing.traceEvents.filter { states[$0] == false }
            if !disabled.isEmpty { return watchDid(watch.verified(disabled: disabled)) }
            return watchDid(script.canarySeen == true ? [] : watch.linesStopped(Self.canaryMissing(logPath)))
        case .detach:
            return [.detachFinished]
        case .restoreLog:
            return []
        }
    }

    private static func canaryMissing(_ logPath: String) -> String {
        "QEMU's trace lines do not reach \(logPath): the canary (\(LinkResetTracing.canaryEvent)) did not arrive"
    }

    /// What the watch's own actions mean here, after publishing its state.
    private mutating func watchDid(_ watchActions: [LinkResetWatch.Action]) -> [Action] {
        var actions: [Action] = [.publish(intact: watch.isIntact, reason: watch.reason)]
        for action in watchActions {
            switch action {
            case .announce(let active, let reason):
                actions.append(.announce(active: active, reason: reason))
            case .reassert:
                actions.append(.note(.reasserting))
                _ = watch.attachStarted()
                actions += start(.stateQueries)
            case .reattach:
                actions.append(.note(.reattaching))
                actions += startAttach()
            case .verify:
                actions += verify()
            }
        }
        return actions
    }
}
