import ErrorEvents
import EventLoop
import Logging

/// One device's AER counters over time.
///
/// Each `poll()` reads the three counter files and returns what grew since the previous
/// poll; the first poll only sets the baseline. A file that cannot be read (it vanished,
/// or reading failed) keeps its last counts, so that errors counted while it was away are
/// reported once it is back. Trouble — a vanished or unreadable file, garbage lines, a
/// re-enumerated device — is logged when it starts, not at every poll.
///
/// A plain value without locks: keep it on the loop that polls it.
package struct AERCounterTracker: Sendable {
    package let host: HostAddress
    package let reader: SysfsAERReader
    /// The counts the next poll is compared with; nil before the first poll.
    package private(set) var baseline: AERCounterSnapshot?
    private var logger: Logger
    private var lastConditions: [Severity: FileCondition] = [:]
    private let paths: SysfsAERReader.CounterPaths

    /// What a poll found a file to be, as far as logging cares.
    private enum FileCondition: Hashable {
        case present(malformed: [MalformedLine])
        case absent
        case unreadable(SystemCallError)
    }

    package init(host: HostAddress, reader: SysfsAERReader, logger: Logger) {
        self.host = host
        self.reader = reader
        self.paths = SysfsAERReader.CounterPaths(host, reader: reader)
        self.logger = logger
        self.logger[metadataKey: "host"] = "\(host)"
    }

    /// Sets the counts the next poll compares with (restored from the state file).
    mutating func restore(baseline: AERCounterSnapshot) {
        self.baseline = baseline
    }

    /// Reads the counters now and returns the new errors since the previous poll.
    package mutating func poll() -> AERCounterChange {
        let reading = reader.read(paths)
        for severity in severitiesMostSevereFirst {
            note(reading[severity], of: severity)
        }
        let current = reading.snapshot
        guard let previous = baseline else {
            baseline = current
            if !current.hasAERCounters {
                logger.info("No AER counters in \(reader.directory(of: host)): no AER capability, or no such device")
            }
            return AERCounterChange()
        }

        let change = current.changes(since: previous)
        var next = current
        for severity in severitiesMostSevereFirst where current[severity] == nil {
            next[severity] = previous[severity]
        }
        baseline = next
        for severity in change.rebaselined where previous[severity] != nil {
            logger.notice("\(AERCounters.fileName(for: severity)) went backwards (device re-enumerated?); new baseline, nothing reported")
        }
        return change
    }

    /// Logs a change in a file's condition, once.
    private mutating func note(_ file: AERCounterFile, of severity: Severity) {
        let condition: FileCondition
        switch file {
        case .present(let counters): condition = .present(malformed: counters.malformedLines)
        case .absent: condition = .absent
        case .unreadable(let error): condition = .unreadable(error)
        }
        let last = lastConditions.updateValue(condition, forKey: severity)
        guard condition != last else { return }

        let name = AERCounters.fileName(for: severity)
        switch (last, condition) {
        case (.present, .absent):
            logger.warning("\(name) vanished; keeping its last counts until it is back")
        case (_, .absent):
            break  // No AER capability: said once, for the whole device, at the first poll.
        case (_, .unreadable(let error)):
            logger.warning("Cannot read \(name): \(error); keeping its last counts")
        case (.some(.present(let before)), .present(let malformed)):
            if !malformed.isEmpty && malformed != before { logGarbage(malformed, in: name) }
        case (let before, .present(let malformed)):
            if before != nil { logger.info("\(name) is readable again") }
            if !malformed.isEmpty { logGarbage(malformed, in: name) }
        }
    }

    private func logGarbage(_ lines: [MalformedLine], in name: String) {
        let shown = lines.prefix(5).map(\.description).joined(separator: "; ")
        let more = lines.count > 5 ? " (and \(lines.count - 5) more)" : ""
        logger.warning("Ignoring \(lines.count) malformed line(s) in \(name): \(shown)\(more)")
    }
}
