/// Host errors seen on one device, per severity, for `query-vfio-devices`.
/// Counts signals (a `HostError`'s `count`), not observations.
package struct DeviceErrorCounters: Hashable, Sendable {
    package private(set) var correctable: UInt64
    package private(set) var nonFatal: UInt64
    package private(set) var fatal: UInt64

    package init(correctable: UInt64 = 0, nonFatal: UInt64 = 0, fatal: UInt64 = 0) {
        self.correctable = correctable
        self.nonFatal = nonFatal
        self.fatal = fatal
    }

    package var total: UInt64 {
        Self.saturatingSum(Self.saturatingSum(correctable, nonFatal), fatal)
    }

    package subscript(severity: Severity) -> UInt64 {
        switch severity {
        case .correctable: correctable
        case .nonFatal: nonFatal
        case .fatal: fatal
        }
    }

    package mutating func record(_ severity: Severity, count: Int) {
        let added = UInt64(max(0, count))
        switch severity {
        case .correctable: correctable = Self.saturatingSum(correctable, added)
        case .nonFatal: nonFatal = Self.saturatingSum(nonFatal, added)
        case .fatal: fatal = Self.saturatingSum(fatal, added)
        }
    }

    package mutating func record(_ error: HostError) {
        record(error.severity, count: error.count)
    }

    // A counter that wraps to zero would read as "no errors": stick at the maximum instead.
    private static func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}
