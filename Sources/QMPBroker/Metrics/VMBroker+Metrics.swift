import ErrorEvents
import QMPWire

extension VMBroker {
    /// What the broker's own events tell the metrics: host errors, link resets, flags.
    func observe(_ name: String, data: JSON?) {
        switch name {
        case PCIErrorEvent.name:
            metrics.hostError(severity: data?["severity"]?.string ?? "unknown", source: data?["source"]?.string ?? "unknown")
            metrics.flagged(recovery.orderedDevices.filter(\.machine.linkError).count)
        case LinkErrorClearedEvent.name:
            metrics.flagged(recovery.orderedDevices.filter(\.machine.linkError).count)
        case LinkResetEvent.name:
            metrics.linkReset()
        default:
            break  // names are strings here: the broker's other events carry nothing to count
        }
    }
}
