import ErrorEvents

/// Turns what moved in the counters of a device and of the ports above it into errors of
/// the right severity, the way the real kernel counts them (SPEC 10), and of a VF's PF:
/// - an error the port above reports moves only that port's `aer_dev_*` files;
/// - a fatal error an endpoint reports may move no `aer_dev_*` file at all, only the root
///   port's `aer_rootport_total_err_fatal`;
/// - QEMU's root port keeps a fatal error's status bit (DLP), so the next non-fatal error
///   counts it again under `aer_dev_nonfatal`.
/// Pure: the reads happen in `DeviceAERCounters`.
package struct AERChangeClassifier: Sendable {
    package let device: HostAddress
    /// The device's PF when it is an SR-IOV VF: its errors are the VF's too (same link).
    package let physicalFunction: HostAddress?
    /// The PF's other VFs: on the same link too.
    package let siblings: Set<HostAddress>
    /// The names each function last counted as fatal: a later non-fatal count of the same
    /// name beside other names is that status bit still set, not a new error.
    private var lastFatalNames: [HostAddress: Set<String>] = [:]

    package init(device: HostAddress, physicalFunction: HostAddress? = nil, siblings: Set<HostAddress> = []) {
        self.device = device
        self.physicalFunction = physicalFunction
        self.siblings = siblings
    }

    /// `changes`: each function's change, the device first. `rootPortGrowth`: the most
    /// severe root-port total that grew, given only when a notification (eventfd, uevent)
    /// says an error just happened, and used only when no function's counters explain it.
    package mutating func classify(
        _ changes: [(function: HostAddress, change: AERCounterChange)],
        rootPortGrowth: (port: HostAddress, severity: Severity, count: UInt64)? = nil
    ) -> [ClassifiedAERError] {
        var classified: [ClassifiedAERError] = []
        for severity in severitiesMostSevereFirst {
            if let error = merge(severity, changes) { classified.append(error) }
        }
        if classified.isEmpty, let growth = rootPortGrowth {
            let note = "counted only in \(growth.port)'s \(RootPortErrorTotals.fileName(for: growth.severity))"
            classified.append(ClassifiedAERError(severity: growth.severity, errors: [], count: growth.count,
                                                 reporters: [growth.port], notes: [note]))
        }
        return classified
    }

    private mutating func merge(
        _ severity: Severity, _ changes: [(function: HostAddress, change: AERCounterChange)]
    ) -> ClassifiedAERError? {
        var errors: [AERErrorCount] = []
        var messages: UInt64 = 0
        var reporters: [HostAddress] = []
        var notes: [String] = []
        for (function, change) in changes {
            guard let delta = change[severity] else { continue }
            var counted = delta.errors
            switch severity {
            case .fatal:
                lastFatalNames[function] = Set(counted.map(\.name))
            case .nonFatal:
                let leftOver = counted.filter { lastFatalNames[function]?.contains($0.name) == true }
                if !leftOver.isEmpty && leftOver.count < counted.count {
                    counted.removeAll { lastFatalNames[function]?.contains($0.name) == true }
                    notes.append("\(leftOver.map(\.name).joined(separator: ", ")) on \(function) is the status left set by the earlier fatal error")
                }
            case .correctable:
                break
            }
            for error in counted { add(error, to: &errors) }
            messages += delta.total > 0 ? delta.total : counted.reduce(0) { $0 + $1.count }
            reporters.append(function)
            if function == physicalFunction {
                notes.append("reported by \(function), the VF's PF")
            } else if siblings.contains(function), let physicalFunction {
                notes.append("reported by \(function), another VF of \(physicalFunction)")
            } else if function != device {
                notes.append("counted at \(function), the port above")
            }
        }
        guard !reporters.isEmpty else { return nil }
        return ClassifiedAERError(severity: severity, errors: errors, count: messages, reporters: reporters, notes: notes)
    }

    /// Adds a counter, summing one that another function counted under the same name.
    private func add(_ error: AERErrorCount, to errors: inout [AERErrorCount]) {
        guard let index = errors.firstIndex(where: { $0.name == error.name }) else {
            errors.append(error)
            return
        }
        errors[index] = AERErrorCount(name: error.name, error: error.error, count: errors[index].count + error.count)
    }
}
