import QMPWire

/// Attaching QEMU's tracing to the broker's log file, keeping it attached, and letting it
/// go, as a value: inputs from the VMM, the log file and the timer come in; commands to
/// send and things to do go out. `GuestResetMonitor` runs the actions; the watch's own
/// state (`LinkResetWatch`) says whether resets are seen and what was announced.
///
/// Attaching is a script of one command at a time: the state queries (what the VMM had
/// on), then `logfile` and the event switches (each reply checked), then a check that
/// the file at the path is still the broker's, then the topology. Checking is the state
/// queries plus `logfile` again. At most one script runs; each carries an exchange number
/// so a reply from an abandoned one is ignored.
public struct TraceAttachment {
    public enum Action: Equatable, Sendable {
        /// Send one command; its reply comes back as `answered(exchange:reply:)`.
        case send(TracingCommand, exchange: Int)
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

    public enum Note: Equatable, Sendable {
        case reasserting
        case reattaching
        case refused(command: String, reason: String)
    }

    private enum Phase: Equatable {
        case idle
        case openingLog
        case running(Script)
        /// Attach commands done: is QEMU writing into the broker's file?
        case confirmingLog
        /// A check was asked for: is the file still the broker's?
        case checkingLogBeforeVerify
    }

    private struct Script: Equatable {
        enum Kind: Equatable {
            case stateQueries
            case attachCommands
            case verify
            /// Undoing the attach, best effort: replies are not judged.
            case detach
        }

        let kind: Kind
        let commands: [TracingCommand]
        let exchange: Int
        var replies: [JSON] = []

        var next: TracingCommand? { replies.count < commands.count ? commands[replies.count] : nil }
        /// Attach commands stop at the first refusal; queries take what they get.
        var checked: Bool { kind == .attachCommands }
    }

    public let logPath: String
    public private(set) var watch = LinkResetWatch()
    private var phase = Phase.idle
    private var exchange = 0
    private var vmmReady = false
    /// Events the VMM had on before the broker attached: left on at detach.
    public private(set) var previouslyEnabled: Set<String> = []
    private var refreshing = false
    private var refreshAgain = false
    /// The attach ends once the topology being read now is in.
    private var attachAwaitsTopology = false

    public init(logPath: String) {
        self.logPath = logPath
    }

    public var isIntact: Bool { watch.isIntact }

    // MARK: inputs

    /// The VMM is (again) ready: follow the log file and switch tracing on.
    public mutating func attach() -> [Action] {
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

    public mutating func logOpened() -> [Action] {
        guard phase == .openingLog else { return [] }
        return start(.stateQueries)
    }

    public mutating func logOpenFailed(_ reason: String) -> [Action] {
        guard phase == .openingLog else { return [] }
        phase = .idle
        return watchDid(watch.attachFailed("cannot follow the trace log: \(reason)"))
    }

    /// The reply to `send(_, exchange:)`; nil when the VMM could not answer or its reply is unreadable.
    public mutating func answered(exchange: Int, reply: JSON?) -> [Action] {
        guard case .running(var script) = phase, script.exchange == exchange, let command = script.next else { return [] }
        guard let reply else { return finish(script, failure: nil) }
        if script.checked, let failure = command.check(reply: reply) {
            // The reason reaches the watch, which announces (and logs) it once.
            return [.note(.refused(command: command.name, reason: "\(failure)"))]
                + finish(script, failure: "QEMU refused \(command.name): \(failure)")
        }
        script.replies.append(reply)
        guard let next = script.next else { return finish(script, failure: nil) }
        phase = .running(script)
        return [.send(next, exchange: exchange)]
    }

    public mutating func logChecked(stillOurs: Bool) -> [Action] {
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
        case .idle, .openingLog, .running:
            return []
        }
    }

    /// Asks QEMU whether the watched events are still on (after a client command that
    /// could have changed them, and periodically); re-asserts them when not. QEMU cannot
    /// be asked where its log goes, so `logfile` is sent again too: a redirect made behind
    /// the broker's back (QEMU's own monitor) lasts at most one check. Checks never pile
    /// up behind a VMM that is slow to answer.
    public mutating func verify() -> [Action] {
        guard watch.isIntact, vmmReady, phase == .idle else { return [] }
        phase = .checkingLogBeforeVerify
        return [.checkLog]
    }

    /// The periodic timer while a VMM is attached.
    public mutating func tick() -> [Action] { watchDid(watch.tick()) }

    /// Re-read the topology (a watched device was added, a reset moved bus numbers).
    /// Requests arriving meanwhile are folded into one more round.
    public mutating func refreshTopology() -> [Action] {
        guard !refreshing else {
            refreshAgain = true
            return []
        }
        refreshing = true
        return [.readTopology]
    }

    /// A system reset (QMP `RESET`): bus numbers may change.
    public mutating func systemReset() -> [Action] { refreshTopology() }

    /// `vmmReady`: whether the VMM is still attached now. The link fails what is pending
    /// before it reports the loss, so a read failed by a lost VMM ends before `upstreamLost`.
    public mutating func topologyRead(vmmReady: Bool) -> [Action] {
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
    public mutating func upstreamLost() -> [Action] {
        vmmReady = false
        phase = .idle
        return watchDid(watch.detached("VMM disconnected")) + [.stopFollowing]
    }

    /// The broker is stopping: give QEMU's log back (to `/dev/stderr`: the broker cannot
    /// learn a VMM's `-D`) and stop following. Best effort: the VMM may already be gone.
    public mutating func detach() -> [Action] {
        phase = .idle
        let actions = watch.isIntact && vmmReady ? start(.detach) : []
        return actions + watchDid(watch.detached("broker stopping")) + [.stopFollowing]
    }

    // MARK: scripts

    private mutating func start(_ kind: Script.Kind) -> [Action] {
        exchange += 1
        let commands: [TracingCommand] = switch kind {
        case .stateQueries: LinkResetTracing.stateQueries
        case .attachCommands: LinkResetTracing.attachCommands(logPath: logPath)
        case .verify: LinkResetTracing.stateQueries + [TracingCommand.setLogFile(path: logPath)]
        case .detach: LinkResetTracing.detachCommands(previouslyEnabled: previouslyEnabled, restoreLogTo: "/dev/stderr")
        }
        let script = Script(kind: kind, commands: commands, exchange: exchange)
        guard let first = script.next else { return finish(script, failure: nil) }
        phase = .running(script)
        return [.send(first, exchange: exchange)]
    }

    private mutating func finish(_ script: Script, failure: String?) -> [Action] {
        phase = .idle
        switch script.kind {
        case .stateQueries:
            previouslyEnabled = LinkResetTracing.previouslyEnabled(fromReplies: script.replies)
            return start(.attachCommands)
        case .attachCommands:
            guard script.replies.count == script.commands.count else {
                return watchDid(watch.attachFailed(failure ?? "the VMM did not answer the tracing commands"))
            }
            phase = .confirmingLog
            return [.checkLog]
        case .verify:
            guard script.replies.count == script.commands.count, let last = script.replies.last,
                  let logFile = script.commands.last else { return [] }
            if let failure = logFile.check(reply: last) { return watchDid(watch.attachFailed("\(failure)")) }
            var states: [String: Bool] = [:]
            for reply in script.replies.dropLast() { states.merge(TracingCommand.traceEventStates(fromReply: reply)) { $1 } }
            let disabled = LinkResetTracing.traceEvents.filter { states[$0] == false }
            return watchDid(watch.verified(disabled: disabled))
        case .detach:
            return []
        }
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
