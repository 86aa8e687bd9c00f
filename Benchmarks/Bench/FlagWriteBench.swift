import BrokerState
import ErrorEvents

/// The link-error flag is committed on the VM's loop, after the `stop` and before the
/// event (`StateStore.saveState`, WAL, no fsync), so its cost sits between an error and
/// its event, and on the loop. Beside it, what the loop pays to hand a history row to the
/// store's writer thread instead.
enum FlagWriteBench {
    static func measure(directory: String, writes: Int) throws -> (flag: Percentiles, handOff: Percentiles) {
        let store = try StateStore(path: "\(directory)/flag-bench.sqlite")
        try store.save(StoredDevice(vm: "vm1", id: "dev0", host: "0000:3b:00.0", policy: .default, state: .clean,
                                    counters: DeviceErrorCounters()))
        var flag: [Double] = [], handOff: [Double] = []
        for index in 0..<writes {
            // Alternating, so that every write changes the row.
            let state = PersistedDeviceState(linkError: index % 2 == 0, stoppedByBroker: false)
            flag.append(try Clock.microseconds { try store.saveState(vm: "vm1", id: "dev0", state) })
            let record = HistoryRecord(vm: "vm1", device: "dev0", host: "0000:3b:00.0", kind: state.linkError ? .flagSet : .flagCleared)
            handOff.append(Clock.microseconds { store.recordHistoryLater(record) })
            store.waitForHistoryWrites()
        }
        return (Percentiles(flag), Percentiles(handOff))
    }
}
