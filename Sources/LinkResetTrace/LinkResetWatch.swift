/// Whether one VM's guest link resets are being seen, as a value: inputs from attaching,
/// re-checking and losing the VMM come in, the actions to run go out. `LinkResetWatcher`
/// runs the actions; `query-broker`, `query-vfio-devices` and `BROKER_LINK_RESET_WATCH`
/// read the state.
package struct LinkResetWatch: Equatable, Sendable {
    package init() {}

    enum State: Equatable {
        /// No VMM, or the broker let go of QEMU's log.
        case detached(reason: String)
        /// The tracing commands are on their way.
        case attaching
        /// QEMU traces into the broker's file and the topology is known.
        case intact
        /// The broker wanted to watch and cannot (or QEMU's state no longer says it can).
        case broken(reason: String)
    }

    package enum Action: Equatable, Sendable {
        /// `BROKER_LINK_RESET_WATCH {active, reason}`, and a log line.
        case announce(active: Bool, reason: String)
        /// Send the attach commands again (the events were switched off behind our back).
        case reassert
        /// Open the trace log afresh, then attach (the file at the path is not ours any
        /// more, or an attach failed and is tried again).
        case reattach
        /// Ask QEMU whether the watched events are still on.
        case verify
    }

    private(set) var state: State = .detached(reason: "not attached yet")
    /// What the last announcement said: a change is announced, a retry that fails the
    /// same way is not.
    private var announced: Announcement?

    private struct Announcement: Equatable {
        let active: Bool
        let reason: String
    }

    package var isIntact: Bool { state == .intact }

    /// Why the watch is not intact, for `query-broker`; nil while it is.
    package var reason: String? {
        switch state {
        case .detached(let reason), .broken(let reason): reason
        case .attaching: "attaching"
        case .intact: nil
        }
    }

    package mutating func attachStarted() -> [Action] {
        state = .attaching
        return []
    }

    package mutating func attached() -> [Action] {
        state = .intact
        return announce(active: true, reason: "attached")
    }

    /// Attach (or re-assert) failed; with no VMM to blame, the watch is broken.
    package mutating func attachFailed(_ reason: String) -> [Action] { breaks(reason) }

    /// QEMU's answer to `trace-event-get-state` for the watched events: those now off.
    /// Only an intact watch is judged: an attach in flight will set the events itself.
    package mutating func verified(disabled: [String]) -> [Action] {
        guard isIntact, !disabled.isEmpty else { return [] }
        return breaks("trace events disabled in QEMU: \(disabled.joined(separator: ", "))") + [.reassert]
    }

    /// The canary did not arrive: whatever the cause (QEMU logs elsewhere, or nowhere; the
    /// file was replaced), QEMU's lines do not reach the broker, so it attaches again.
    package mutating func linesStopped(_ reason: String) -> [Action] {
        guard isIntact else { return [] }
        return breaks(reason) + [.reattach]
    }

    /// The path no longer names the file the broker reads (removed, renamed, replaced).
    /// QEMU's `logfile` with the same path reopens it (measured on 7.2.22), so attaching
    /// again puts QEMU back on a file the broker owns.
    package mutating func logReplaced() -> [Action] {
        guard isIntact else { return [] }
        return breaks("the trace log was removed or replaced") + [.reattach]
    }

    /// The periodic timer while a VMM is attached: an intact watch is checked, a broken one
    /// tried again (announced only when the reason changes, so retrying is quiet).
    package mutating func tick() -> [Action] {
        switch state {
        case .intact: [.verify]
        case .broken: [.reattach]
        case .attaching, .detached: []
        }
    }

    /// The VMM went away, or the broker gave QEMU's log back.
    /// Announced only if the last announcement said the watch was on.
    package mutating func detached(_ reason: String) -> [Action] {
        state = .detached(reason: reason)
        return announced?.active == true ? announce(active: false, reason: reason) : []
    }

    private mutating func breaks(_ reason: String) -> [Action] {
        state = .broken(reason: reason)
        return announce(active: false, reason: reason)
    }

    private mutating func announce(active: Bool, reason: String) -> [Action] {
        let announcement = Announcement(active: active, reason: reason)
        guard announcement != announced else { return [] }
        announced = announcement
        return [.announce(active: active, reason: reason)]
    }
}
