import ErrorEvents
import Logging

/// The AER counters that speak for one watched device: its own, its PF's and the PF's
/// other VFs' when it is an SR-IOV VF (they share its link), those of every port above it
/// up to the root port, and the root port's totals (SPEC 10). Each `poll` reads
/// them all and returns the errors since the previous poll, classified; the first read,
/// at init, is the baseline.
///
/// A plain value without locks: keep it on the thread that polls it.
package struct DeviceAERCounters: Sendable {
    package let host: HostAddress
    /// The ports above the device, nearest first.
    package let ports: [HostAddress]
    /// The PF when the device is an SR-IOV VF: it shares the VF's link.
    package let physicalFunction: HostAddress?
    /// The PF's other VFs, as they were when the watch began.
    package let siblingFunctions: [HostAddress]
    /// The device first, then its PF and the PF's other VFs, then the ports.
    private var trackers: [AERCounterTracker]
    private let reader: SysfsAERReader
    var rootPortTotals: RootPortErrorTotals?
    private var classifier: AERChangeClassifier

    package init(host: HostAddress, reader: SysfsAERReader, logger: Logger) {
        self.host = host
        self.reader = reader
        ports = PCIAncestry.portsAbove(host, sysfsRoot: reader.sysfsRoot)
        let physicalFunction = PCIAncestry.physicalFunction(of: host, sysfsRoot: reader.sysfsRoot)
        self.physicalFunction = physicalFunction
        siblingFunctions = physicalFunction.map {
            PCIAncestry.virtualFunctions(of: $0, sysfsRoot: reader.sysfsRoot).filter { $0 != host }
        } ?? []
        let functions = [host] + (physicalFunction.map { [$0] } ?? []) + siblingFunctions + ports
        trackers = functions.map { AERCounterTracker(host: $0, reader: reader, logger: logger) }
        classifier = AERChangeClassifier(device: host, physicalFunction: physicalFunction, siblings: Set(siblingFunctions))
        for index in trackers.indices { _ = trackers[index].poll() }  // errors before attach are history
        rootPortTotals = rootPort.map { RootPortErrorTotals.read($0, reader: reader) }
    }

    /// The topmost port, whose totals count what reached it from below.
    package var rootPort: HostAddress? { ports.last }

    /// Whether any function has counter files (a device without AER, or a fake tree
    /// without files, has none).
    package var hasAERCounters: Bool { trackers.contains { $0.baseline?.hasAERCounters == true } }

    /// The counts the next poll compares with, per function.
    package var baselines: [(function: HostAddress, snapshot: AERCounterSnapshot)] {
        trackers.compactMap { tracker in tracker.baseline.map { (tracker.host, $0) } }
    }

    /// Sets one function's baseline (from the state file).
    mutating func restore(_ snapshot: AERCounterSnapshot, of function: HostAddress) {
        guard let index = trackers.firstIndex(where: { $0.host == function }) else { return }
        trackers[index].restore(baseline: snapshot)
    }

    /// Reads everything now. `notified`: an eventfd or uevent announced an error, so an
    /// error that only the root port's totals counted is this device's; a periodic poll
    /// leaves the totals alone (they also count the errors of other devices below).
    package mutating func poll(notified: Bool) -> [ClassifiedAERError] {
        var changes: [(function: HostAddress, change: AERCounterChange)] = []
        for index in trackers.indices {
            let change = trackers[index].poll()
            if !change.isEmpty { changes.append((trackers[index].host, change)) }
        }
        var growth: (port: HostAddress, severity: Severity, count: UInt64)?
        if notified, let port = rootPort, let before = rootPortTotals {
            let now = RootPortErrorTotals.read(port, reader: reader)
            if let grown = now.mostSevereGrowth(since: before) { growth = (port, grown.severity, grown.count) }
            rootPortTotals = now
        }
        return classifier.classify(changes, rootPortGrowth: growth)
    }
}
