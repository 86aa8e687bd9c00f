import ErrorEvents
import GRDB

extension StateStore {
    package func device(vm: String, id: String) throws(StateStoreError) -> StoredDevice? {
        try read { db in
            try Row.fetchOne(db.cachedStatement(sql: DeviceColumns.selectOne), arguments: [vm, id])
                .map(DeviceColumns.decode)
        }
    }

    /// The VM's devices, by id.
    package func devices(vm: String) throws(StateStoreError) -> [StoredDevice] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: DeviceColumns.selectVM), arguments: [vm])
                .map(DeviceColumns.decode)
        }
    }

    /// Inserts or replaces every field of the device, the state included: pass the state
    /// the device's machine has now (after restoring it from `device(vm:id:)`), not `.clean`,
    /// or a stored flag is overwritten. Waits for the history writer: queued error rows
    /// carry older counters, which must not land after these.
    package func save(_ device: StoredDevice) throws(StateStoreError) {
        let now = WallClock.microsecondsSinceEpoch()
        let arguments = DeviceColumns.arguments(device, now: now)
        try writer.afterQueued { () throws(StateStoreError) in
            try write { db in
                try db.cachedStatement(sql: DeviceColumns.upsert).execute(arguments: arguments)
                if device.origin != nil {
                    try db.cachedStatement(sql: DeviceColumns.upsertRegistration).execute(arguments: arguments)
                }
            }
        }
    }

    /// The hot path: a `persist` action of the device machine. When this returns, the flag
    /// and the broker's ownership of the pause are committed to the file: a broker killed
    /// right after finds them on restart. The device must have been `save`d; otherwise
    /// nothing is written and `unknownDevice` is thrown. Straight to SQLite, never behind
    /// the history writer: no queued write touches the flag columns.
    package func saveState(vm: String, id: String, _ state: PersistedDeviceState) throws(StateStoreError) {
        var arguments = DeviceColumns.stateArguments(state)
        arguments += ["vm": vm, "id": id, "now": WallClock.microsecondsSinceEpoch()]
        try write { db in
            try db.cachedStatement(sql: DeviceColumns.updateState).execute(arguments: arguments)
            guard db.changesCount == 1 else { throw StateStoreError.unknownDevice(vm: vm, id: id) }
        }
    }

    /// Forgets the device (`vfio-device-del`); its history stays. Returns whether it was
    /// stored. After the queued history writes, like `save`.
    @discardableResult
    package func removeDevice(vm: String, id: String) throws(StateStoreError) -> Bool {
        try writer.afterQueued { () throws(StateStoreError) in
            try write { db in
                try db.cachedStatement(sql: DeviceColumns.delete).execute(arguments: [vm, id])
                return db.changesCount > 0
            }
        }
    }

    /// "The broker stopped this VM at T and still owns the pause", from the device rows;
    /// nil when no device of the VM holds a broker stop.
    package func brokerStop(vm: String) throws(StateStoreError) -> BrokerStop? {
        let rows = try read { db in
            try Row.fetchAll(db.cachedStatement(sql: DeviceColumns.selectBrokerStops), arguments: [vm])
        }
        var devices: [String] = []
        var since: Int64?
        for row in rows {
            let columns = ColumnReader(row: row, table: DeviceColumns.table)
            devices.append(try columns.string("id"))
            let at = try columns.int64("stopped_by_broker_at")
            since = min(since ?? at, at)
        }
        guard let since else { return nil }
        return BrokerStop(vm: vm, microsecondsSinceEpoch: since, devices: devices)
    }
}
