import ErrorEvents

/// The counters a device's errors were last reported up to, as text for the state file:
/// one `FUNCTION SEVERITY NAME COUNT` line per counter, and `FUNCTION rootport SEVERITY
/// COUNT` lines for the root port's totals. A broker that restarts compares the counters
/// now with these and reports what happened while nobody watched.
extension DeviceAERCounters {
    package var baselineText: String {
        var lines: [String] = []
        for (function, snapshot) in baselines {
            for severity in severitiesMostSevereFirst {
                guard let counters = snapshot[severity] else { continue }
                for entry in counters.counts { lines.append("\(function) \(severity.rawValue) \(entry.name) \(entry.count)") }
                if let total = counters.total {
                    lines.append("\(function) \(severity.rawValue) \(AERCounters.totalName(for: severity)) \(total)")
                }
            }
        }
        if let port = rootPort, let totals = rootPortTotals {
            for severity in severitiesMostSevereFirst {
                if let count = totals[severity] { lines.append("\(port) rootport \(severity.rawValue) \(count)") }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Replaces the baseline with stored text, so that the next poll reports everything
    /// since then. Lines of functions no longer above the device are ignored.
    package mutating func restoreBaseline(_ text: String) {
        var files: [HostAddress: [Severity: String]] = [:]
        var totals = RootPortErrorTotals()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count == 4, let function = HostAddress(fields[0]) else { continue }
            if fields[1] == "rootport" {
                guard let severity = Severity(rawValue: fields[2]), let count = UInt64(fields[3]) else { continue }
                totals[severity] = count
            } else if let severity = Severity(rawValue: fields[1]) {
                files[function, default: [:]][severity, default: ""] += "\(fields[2]) \(fields[3])\n"
            }
        }
        for (function, texts) in files {
            var snapshot = AERCounterSnapshot()
            for (severity, text) in texts { snapshot[severity] = AERCounters(parsing: text, severity: severity) }
            restore(snapshot, of: function)
        }
        if totals.isPresent { rootPortTotals = totals }
    }
}
