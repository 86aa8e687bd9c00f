/// Where the broker learnt of a host error (the `source` member of `VFIO_PCI_ERROR`).
package enum ErrorSource: String, Sendable, Hashable, CaseIterable, Codable {
    /// A vfio error or request eventfd fired.
    case eventfd
    /// The `aer_dev_*` counters in sysfs moved.
    case sysfs
    /// A kernel uevent (`ERROR_EVENT=...`).
    case uevent
    /// The kernel's `ras:aer_event` tracepoint named the device or a port above it.
    case aerTracepoint = "aer-tracepoint"
    /// `x-vfio-inject-error`: a drill, not a real device error.
    case inject
}

/// A name that is not an AER error of the severity it was given with.
package struct UnknownAERErrorName: Error, Hashable, Sendable {
    package let name: String
    package let severity: Severity

    package init(name: String, severity: Severity) {
        self.name = name
        self.severity = severity
    }
}

/// A device error observed on the host, as the error sources hand it to the domain.
package struct HostError: Hashable, Sendable {
    package let severity: Severity
    /// The exact errors when the source knows them (sysfs counter deltas); empty when it
    /// does not (a bare eventfd signal). Forwarding then uses the severity's default bit.
    package let errors: [AERError]
    /// How many signals were coalesced into this one observation; at least 1.
    package let count: Int
    package let source: ErrorSource

    package init(severity: Severity, errors: [AERError] = [], count: Int = 1, source: ErrorSource) {
        self.severity = severity
        self.errors = errors
        // Something was signalled, so it happened at least once; a zero or negative
        // delta is a source's arithmetic slip, not a reason to drop the error.
        self.count = max(1, count)
        self.source = source
    }

    /// Builds the error list from names as sysfs prints them (`CmpltTO`,
    /// `dev_fatal_errs_bit[22]`) or as QEMU spells them (`COMP_TIME`).
    /// Throws on the first name that is not in the severity's AER table, so a command
    /// such as `x-vfio-inject-error` can answer with a clear error.
    package init(
        severity: Severity, names: [String], count: Int = 1, source: ErrorSource
    ) throws(UnknownAERErrorName) {
        var errors: [AERError] = []
        errors.reserveCapacity(names.count)
        for name in names {
            guard let error = AERError.named(name, correctable: severity.isCorrectable) else {
                throw UnknownAERErrorName(name: name, severity: severity)
            }
            errors.append(error)
        }
        self.init(severity: severity, errors: errors, count: count, source: source)
    }
}
