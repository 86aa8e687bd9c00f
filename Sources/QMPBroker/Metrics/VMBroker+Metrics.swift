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

extension VMBroker {
    /// Publishes whether the VM is protected now (watch and error triggers); called where
    /// either can change: the watch's publish, a trigger taken or released, an eventfd or a
    /// device added or removed.
    func publishProtection() {
        let status = board.status(of: configuration.name)
        let intact = linkResetWatcher?.watch.isIntact ?? false
        metrics.protection(VMProtection(
            watchIntact: intact, source: status?.linkResetSource,
            devices: recovery.orderedDevices.map { .init(id: $0.id, triggerSource: $0.triggerSource) }))
    }
}
