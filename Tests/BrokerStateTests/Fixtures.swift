import BrokerState
import ErrorEvents

extension StoredDevice {
    static func sample(
        vm: String = "vm1", id: String = "gpu0", host: String = "0000:01:00.0",
        policy: DevicePolicy = .default, state: PersistedDeviceState = .clean,
        counters: DeviceErrorCounters = DeviceErrorCounters()
    ) -> StoredDevice {
        StoredDevice(vm: vm, id: id, host: host, policy: policy, state: state, counters: counters)
    }
}

extension ErrorHistoryEntry {
    static func sample(
        vm: String = "vm1", device: String = "gpu0", time: Int64 = 1_700_000_000_000_000,
        severity: Severity = .nonFatal, errors: [String] = ["CmpltTO"], count: Int = 1,
        source: ErrorSource = .sysfs, action: PCIErrorEvent.Action = .forward, linkError: Bool = false
    ) -> ErrorHistoryEntry {
        ErrorHistoryEntry(
            vm: vm, device: device, host: "0000:01:00.0", microsecondsSinceEpoch: time,
            severity: severity, errors: errors, count: count, source: source, action: action,
            linkError: linkError)
    }
}

extension PersistedDeviceState {
    static let flagged = PersistedDeviceState(linkError: true, stoppedByBroker: false)
    static let stoppedByBroker = PersistedDeviceState(linkError: true, stoppedByBroker: true)
}
