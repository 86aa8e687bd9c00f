import ErrorEvents

/// One error of one severity that a device's counters (or those of the ports above it)
/// show, classified for that device.
package struct ClassifiedAERError: Sendable, Hashable {
    package let severity: Severity
    /// The named counters that grew, merged over every function that counted them.
    package let errors: [AERErrorCount]
    /// How many error messages this stands for; at least 1.
    package let count: UInt64
    /// The functions whose counters moved: the device, a port above it, or the root port's totals.
    package let reporters: [HostAddress]
    /// What a reader of the event should know about how it was classified.
    package let notes: [String]

    package init(severity: Severity, errors: [AERErrorCount], count: UInt64, reporters: [HostAddress], notes: [String] = []) {
        self.severity = severity
        self.errors = errors
        self.count = max(1, count)
        self.reporters = reporters
        self.notes = notes
    }

    /// The host error for the domain, from the given source.
    package func hostError(source: ErrorSource, count: Int? = nil) -> HostError {
        HostError(severity: severity, errors: errors.compactMap(\.error),
                  count: count ?? Int(clamping: self.count), source: source)
    }
}
