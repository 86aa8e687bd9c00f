import ErrorEvents
import Glibc

/// A root port's `aer_rootport_total_err_cor`, `_fatal` and `_nonfatal`: how many error
/// messages of each severity reached it from anywhere below.
///
/// The one trace of a fatal error that an endpoint reports: the kernel cannot read the
/// endpoint's status after the link went down (`type=Inaccessible`), so no `aer_dev_*`
/// file moves (SPEC 10).
package struct RootPortErrorTotals: Sendable, Hashable {
    /// The totals that could be read; a missing or garbled file has none.
    package var counts: [Severity: UInt64] = [:]

    package init(counts: [Severity: UInt64] = [:]) {
        self.counts = counts
    }

    package static func fileName(for severity: Severity) -> String {
        switch severity {
        case .correctable: "aer_rootport_total_err_cor"
        case .nonFatal: "aer_rootport_total_err_nonfatal"
        case .fatal: "aer_rootport_total_err_fatal"
        }
    }

    package subscript(severity: Severity) -> UInt64? {
        get { counts[severity] }
        set { counts[severity] = newValue }
    }

    /// Reads the three files of `port`; a missing or garbled file is nil.
    package static func read(_ port: HostAddress, reader: SysfsAERReader) -> RootPortErrorTotals {
        func value(_ severity: Severity) -> UInt64? {
            guard case .success(let bytes) = PathReader.bytes(reader.directory(of: port) + "/" + fileName(for: severity), limit: PathReader.attributeLimit)
            else { return nil }
            return UInt64(String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace })
        }
        var totals = RootPortErrorTotals()
        for severity in Severity.allCases { totals[severity] = value(severity) }
        return totals
    }

    /// The most severe total that grew since `previous`, and by how much.
    package func mostSevereGrowth(since previous: RootPortErrorTotals) -> (severity: Severity, count: UInt64)? {
        for severity in severitiesMostSevereFirst {
            if let now = self[severity], let before = previous[severity], now > before {
                return (severity, now - before)
            }
        }
        return nil
    }

    /// Whether any of the files exists.
    package var isPresent: Bool { !counts.isEmpty }
}
