import ErrorEvents

/// What grew in one counter file between two reads: the new errors of one severity.
package struct AERCounterDelta: Sendable, Hashable {
    package let severity: Severity
    /// Each counter that grew, by how much, in the kernel's order (bit order).
    package let errors: [AERErrorCount]
    /// How much `TOTAL_ERR_*` grew: the number of new error messages. It can be
    /// non-zero with no `errors` (masked bits, bits the kernel does not count).
    package let total: UInt64

    package init(severity: Severity, errors: [AERErrorCount], total: UInt64) {
        self.severity = severity
        self.errors = errors
        self.total = total
    }

    /// The errors' names as the kernel prints them, for events.
    package var names: [String] { errors.map(\.name) }
}

extension AERCounters {
    /// How one file's counters moved between two reads of the same device.
    package enum Growth: Sendable, Hashable {
        case unchanged
        case grew(AERCounterDelta)
        /// Some counter went down: the device was re-enumerated (counters restart at
        /// zero), so these counts are a new baseline and nothing can be reported.
        case wentBackwards
    }

    /// Compares with an earlier read of the same file. A counter missing from a read
    /// counts as zero: the kernel omits unnamed bits whose count is zero.
    package func growth(since previous: AERCounters) -> Growth {
        precondition(previous.severity == severity, "comparing \(severity) counters with \(previous.severity) counters")
        var previousCounts: [String: UInt64] = [:]
        for entry in previous.counts { previousCounts[entry.name] = entry.count }

        var grown: [AERErrorCount] = []
        var currentNames: Set<String> = []
        for entry in counts {
            currentNames.insert(entry.name)
            let before = previousCounts[entry.name] ?? 0
            if entry.count < before { return .wentBackwards }
            if entry.count > before {
                grown.append(AERErrorCount(name: entry.name, error: entry.error, count: entry.count - before))
            }
        }
        if previous.counts.contains(where: { !currentNames.contains($0.name) && $0.count > 0 }) {
            return .wentBackwards
        }

        var totalGrowth: UInt64 = 0
        if let now = total, let before = previous.total {
            if now < before { return .wentBackwards }
            totalGrowth = now - before
        }
        if grown.isEmpty && totalGrowth == 0 { return .unchanged }
        return .grew(AERCounterDelta(severity: severity, errors: grown, total: totalGrowth))
    }
}
