import ErrorEvents
import GRDB

extension StateStore {
    /// Appends one emitted `VFIO_PCI_ERROR`. With `counters`, the device's counters are
    /// stored in the same transaction, so history and counters never disagree on disk.
    public func appendHistory(
        _ entry: ErrorHistoryEntry, counters: DeviceErrorCounters? = nil
    ) throws(StateStoreError) {
        let arguments = try HistoryColumns.arguments(entry)
        try write { db in
            try db.cachedStatement(sql: HistoryColumns.insert).execute(arguments: arguments)
            if let counters {
                var counterArguments = DeviceColumns.counterArguments(counters)
                counterArguments += ["vm": entry.vm, "id": entry.device]
                try db.cachedStatement(sql: DeviceColumns.updateCounters).execute(arguments: counterArguments)
                guard db.changesCount == 1 else {
                    throw StateStoreError.unknownDevice(vm: entry.vm, id: entry.device)
                }
            }
        }
    }

    /// The newest `limit` entries of the VM (or of one of its devices), newest first.
    public func history(vm: String, device: String? = nil, limit: Int) throws(StateStoreError) -> [ErrorHistoryEntry] {
        guard limit > 0 else { return [] }
        return try read { db in
            let rows: [Row]
            if let device {
                rows = try Row.fetchAll(
                    db.cachedStatement(sql: HistoryColumns.selectDevice), arguments: [vm, device, limit])
            } else {
                rows = try Row.fetchAll(db.cachedStatement(sql: HistoryColumns.selectVM), arguments: [vm, limit])
            }
            return try rows.map(HistoryColumns.decode)
        }
    }
}
