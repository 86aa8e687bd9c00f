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

extension HistoryRecord {
    /// An error record as the broker writes it for an emitted `VFIO_PCI_ERROR`.
    static func sampleError(
        vm: String = "vm1", device: String = "gpu0", time: Int64 = 1_700_000_000_000_000,
        severity: Severity = .nonFatal, errors: [String] = ["CmpltTO"], count: Int = 1,
        source: ErrorSource = .sysfs, action: PCIErrorEvent.Action = .forward, linkError: Bool = false
    ) -> HistoryRecord {
        HistoryRecord(vm: vm, device: device, host: "0000:01:00.0", kind: .error, severity: severity, errors: errors,
                      count: count, source: source.rawValue, action: action.rawValue, linkError: linkError,
                      microsecondsSinceEpoch: time)
    }

    /// As recorded, before the store numbered it.
    var unnumbered: HistoryRecord {
        var copy = self
        copy.sequence = nil
        return copy
    }
}

extension StateStore {
    /// The VM's error records, oldest first, as recorded.
    func errorRecords(vm: String, device: String? = nil, limit: Int = 1000) throws -> [HistoryRecord] {
        try historyRecords(HistoryQuery(vm: vm, device: device, kinds: [.error], limit: limit)).map(\.unnumbered)
    }
}

extension PersistedDeviceState {
    static let flagged = PersistedDeviceState(linkError: true, stoppedByBroker: false)
    static let stoppedByBroker = PersistedDeviceState(linkError: true, stoppedByBroker: true)
}
