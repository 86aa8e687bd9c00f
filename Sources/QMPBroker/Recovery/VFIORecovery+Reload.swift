import ErrorEvents
import QMPWire

extension VFIORecovery {
    /// Brings the config-declared devices in line with a reloaded config: new ones are
    /// watched, dropped ones forgotten, a changed policy applied in place (flags kept), a
    /// changed host or inject-at re-added. Devices added by command or discovery stay.
    /// Returns one line per change, for the log.
    func reconcile(_ configured: [VFIORecoverySettings.DeviceConfiguration]) -> [String] {
        var changes: [String] = []
        let wanted = Dictionary(configured.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for device in orderedDevices where device.origin == "config" && wanted[device.id] == nil {
            do throws(QMPError) {
                try removeDevice(id: device.id)
                changes.append("device \(device.id) removed")
            } catch {
                changes.append("device \(device.id) not removed: \(error.desc)")
            }
        }
        for entry in configured {
            do throws(QMPError) {
                let policy = entry.policy
                if let current = try? device(entry.id) {
                    if current.host.description != entry.host || current.injectTarget != (entry.injectAt ?? entry.id) {
                        try removeDevice(id: entry.id)
                        try addDevice(id: entry.id, host: entry.host, policy: policy, injectAt: entry.injectAt, origin: "config")
                        changes.append("device \(entry.id) re-added (host \(entry.host), inject-at \(entry.injectAt ?? entry.id))")
                    } else if current.machine.policy != policy {
                        let old = current.machine.policy
                        try setPolicy(entry.id, policy)
                        changes.append("device \(entry.id) policy \(old.mode.rawValue) -> \(policy.mode.rawValue)"
                                       + (old.autoCont != policy.autoCont ? ", auto-cont \(policy.autoCont)" : ""))
                    }
                } else {
                    try addDevice(id: entry.id, host: entry.host, policy: policy, injectAt: entry.injectAt, origin: "config")
                    changes.append("device \(entry.id) added (host \(entry.host), policy \(policy.mode.rawValue))")
                }
            } catch {
                changes.append("device \(entry.id) not applied: \(error.desc)")
            }
        }
        return changes
    }
}
