import ErrorEvents

/// A device's three AER counter files read at one moment. A nil file was not there:
/// the device has no AER capability, or is gone.
package struct AERCounterSnapshot: Sendable, Hashable {
    package var correctable: AERCounters?
    package var nonFatal: AERCounters?
    package var fatal: AERCounters?

    package init(correctable: AERCounters? = nil, nonFatal: AERCounters? = nil, fatal: AERCounters? = nil) {
        self.correctable = correctable
        self.nonFatal = nonFatal
        self.fatal = fatal
    }

    package subscript(severity: Severity) -> AERCounters? {
        get {
            switch severity {
            case .correctable: correctable
            case .nonFatal: nonFatal
            case .fatal: fatal
            }
        }
        set {
            switch severity {
            case .correctable: correctable = newValue
            case .nonFatal: nonFatal = newValue
            case .fatal: fatal = newValue
            }
        }
    }

    /// False when none of the files exists: no AER capability (or no device).
    package var hasAERCounters: Bool { correctable != nil || nonFatal != nil || fatal != nil }

    /// What grew since `previous`, one delta per severity, most severe first.
    ///
    /// A file that went backwards, or that is here now but was not before, becomes a
    /// new baseline and is listed in `rebaselined`, never reported: its counts say
    /// nothing about errors since `previous`. A file that was there and is not now
    /// reports nothing (the caller keeps the old counts; see `AERCounterTracker`).
    package func changes(since previous: AERCounterSnapshot) -> AERCounterChange {
        var change = AERCounterChange()
        for severity in severitiesMostSevereFirst {
            guard let current = self[severity] else { continue }
            guard let before = previous[severity] else {
                change.rebaselined.append(severity)
                continue
            }
            switch current.growth(since: before) {
            case .unchanged: break
            case .grew(let delta): change.deltas.append(delta)
            case .wentBackwards: change.rebaselined.append(severity)
            }
        }
        return change
    }
}

/// Fatal before non-fatal before correctable: the order in which changes are reported.
let severitiesMostSevereFirst: [Severity] = [.fatal, .nonFatal, .correctable]
