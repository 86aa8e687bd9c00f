import BrokerState
import QMPWire

/// Devices added at runtime come back after a restart as they were added: policy,
/// inject-at and flag from their rows. A config entry with the same id wins. Eventfds cannot outlive the broker: management must send them again, and
/// `query-vfio-devices` shows which sources are active.
extension VFIORecovery {
    func storedDevices() -> [StoredDevice] {
        guard let store else { return [] }
        do {
            return try store.devices(vm: vmName)
        } catch {
            logger.error("cannot read the stored devices", metadata: ["reason": "\(error)"])
            return []
        }
    }

    /// `stored` was read before the config entries were added (which rewrites their rows).
    func restore(_ stored: [StoredDevice]) {
        let configured = Dictionary(settings.devices.map { ($0.id, $0) }) { first, _ in first }
        for row in stored {
            if let entry = configured[row.id] {
                if row.origin == "command" || row.host != entry.host || row.injectAt != entry.injectAt {
                    logger.notice("the config entry wins over the stored device of the same id",
                                  metadata: ["device": "\(row.id)", "stored-host": "\(row.host)", "config-host": "\(entry.host)"])
                }
                continue
            }
            // Config devices dropped from the config stay dropped; discovery finds its own again.
            // A row of unknown origin (written before v2) may be a runtime one: kept, flag first.
            guard row.origin == "command" || row.origin == nil else { continue }
            do throws(QMPError) {
                try addDevice(id: row.id, host: row.host, policy: row.policy, injectAt: row.injectAt, origin: "command")
                logger.warning("restored a device added at runtime; its eventfds are gone, send them again with vfio-eventfd-add",
                               metadata: ["device": "\(row.id)", "link-error": "\(row.state.linkError)"])
            } catch {
                logger.error("stored device not watched", metadata: ["device": "\(row.id)", "reason": "\(error.desc)"])
            }
        }
    }
}
