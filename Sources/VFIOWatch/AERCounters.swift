import ErrorEvents

/// One of a device's AER counter files (`aer_dev_correctable`, `aer_dev_nonfatal`,
/// `aer_dev_fatal`), parsed.
///
/// The kernel writes (drivers/pci/pcie/aer.c, `aer_stats_dev_attr`) one `NAME COUNT\n`
/// line per status bit in bit order — named bits always, unnamed bits only when non-zero,
/// as `dev_fatal_errs_bit[N] COUNT` — then `TOTAL_ERR_COR`, `TOTAL_ERR_NONFATAL` or
/// `TOTAL_ERR_FATAL`, the number of error messages the device sent. COUNT is `%llu`.
package struct AERCounters: Sendable, Hashable {
    package let severity: Severity
    /// The per-bit counters, in the order the kernel printed them.
    package let counts: [AERErrorCount]
    /// The `TOTAL_ERR_*` line: error messages, not bits (one message can set several
    /// bits). Nil when the file had no such line.
    package let total: UInt64?
    /// Lines that are not `NAME COUNT`: reported to the caller, otherwise skipped.
    package let malformedLines: [MalformedLine]

    package init(severity: Severity, counts: [AERErrorCount], total: UInt64?, malformedLines: [MalformedLine] = []) {
        self.severity = severity
        self.counts = counts
        self.total = total
        self.malformedLines = malformedLines
    }

    /// The file in a device's sysfs directory that holds this severity's counters.
    package static func fileName(for severity: Severity) -> String {
        switch severity {
        case .correctable: "aer_dev_correctable"
        case .nonFatal: "aer_dev_nonfatal"
        case .fatal: "aer_dev_fatal"
        }
    }

    /// The name of the last line, which counts messages rather than bits.
    package static func totalName(for severity: Severity) -> String {
        switch severity {
        case .correctable: "TOTAL_ERR_COR"
        case .nonFatal: "TOTAL_ERR_NONFATAL"
        case .fatal: "TOTAL_ERR_FATAL"
        }
    }

    /// The counter printed under `name`, if the file had it.
    package func count(named name: String) -> UInt64? {
        counts.first { $0.name == name }?.count
    }
}

/// A counter under the exact name the kernel printed, with the AER bit behind it.
package struct AERErrorCount: Sendable, Hashable {
    /// As printed: `DLP`, `CmpltTO`, `dev_fatal_errs_bit[7]`.
    package let name: String
    /// The status bit, for injecting by mask. Nil only for a name this code does not know.
    package let error: AERError?
    package let count: UInt64

    package init(name: String, error: AERError?, count: UInt64) {
        self.name = name
        self.error = error
        self.count = count
    }
}

/// A line of a counter file that could not be used, and why.
package struct MalformedLine: Sendable, Hashable, CustomStringConvertible {
    /// 1-based.
    package let lineNumber: Int
    /// The line, cut to `maximumLength` characters so that logs stay bounded.
    package let text: String
    package let reason: String

    static let maximumLength = 120

    package init(lineNumber: Int, text: String, reason: String) {
        self.lineNumber = lineNumber
        self.text = text.count > Self.maximumLength ? String(text.prefix(Self.maximumLength)) + "…" : text
        self.reason = reason
    }

    package var description: String { "line \(lineNumber) \"\(text)\": \(reason)" }
}

extension AERCounters {
    /// Parses a counter file's text. Never fails: lines it cannot use go to `malformedLines`.
    package init(parsing text: String, severity: Severity) {
        let totalName = Self.totalName(for: severity)
        var counts: [AERErrorCount] = []
        var seen: Set<String> = []
        var total: UInt64?
        var malformed: [MalformedLine] = []

        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // The kernel ends every line with a newline; the empty piece after it is no line.
            if line.isEmpty { continue }
            func reject(_ reason: String) {
                malformed.append(MalformedLine(lineNumber: index + 1, text: String(line), reason: reason))
            }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 2 else {
                reject("expected NAME COUNT")
                continue
            }
            let name = String(fields[0])
            guard let count = Self.decimal(fields[1]) else {
                reject("count is not a decimal number")
                continue
            }
            guard seen.insert(name).inserted else {
                reject("duplicate counter")
                continue
            }
            if name == totalName {
                total = count
            } else if name.hasPrefix("TOTAL_ERR_") {
                reject("total of another severity; expected \(totalName)")
            } else {
                counts.append(AERErrorCount(name: name, error: KernelAERNames.error(named: name, severity: severity), count: count))
            }
        }
        self.init(severity: severity, counts: counts, total: total, malformedLines: malformed)
    }

    /// `%llu`: ASCII digits only (no sign, no spaces), within UInt64.
    private static func decimal(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return nil
        }
        return UInt64(text)
    }
}
