import BrokerState
import ErrorEvents
import Testing

@Suite struct ErrorHistoryTests {
    @Test func historyIsNewestFirstByEmissionOrder() throws {
        let store = try StateStore.inMemory()
        // The second error carries an earlier time (a clock step): emission order wins.
        let first = ErrorHistoryEntry.sample(time: 2_000, severity: .correctable, errors: ["RxErr"])
        let second = ErrorHistoryEntry.sample(time: 1_000, severity: .fatal, linkError: true)
        try store.appendHistory(first)
        try store.appendHistory(second)
        #expect(try store.history(vm: "vm1", limit: 10) == [second, first])
    }

    @Test func limitAndDeviceFilterAndVMScope() throws {
        let store = try StateStore.inMemory()
        for index in 0..<5 {
            try store.appendHistory(.sample(device: index % 2 == 0 ? "gpu0" : "nic0", time: Int64(index)))
        }
        try store.appendHistory(.sample(vm: "vm2", time: 99))
        #expect(try store.history(vm: "vm1", limit: 2).map(\.microsecondsSinceEpoch) == [4, 3])
        #expect(try store.history(vm: "vm1", device: "gpu0", limit: 10).map(\.microsecondsSinceEpoch) == [4, 2, 0])
        #expect(try store.history(vm: "vm1", device: "nic0", limit: 1).map(\.microsecondsSinceEpoch) == [3])
        #expect(try store.history(vm: "vm2", limit: 10).map(\.microsecondsSinceEpoch) == [99])
        #expect(try store.history(vm: "vm3", limit: 10).isEmpty)
    }

    @Test(arguments: [0, -1])
    func aNonPositiveLimitIsEmpty(_ limit: Int) throws {
        let store = try StateStore.inMemory()
        try store.appendHistory(.sample())
        #expect(try store.history(vm: "vm1", limit: limit).isEmpty)
    }

    @Test func everyFieldRoundTrips() throws {
        let store = try StateStore.inMemory()
        let entries = [
            ErrorHistoryEntry.sample(
                severity: .fatal, errors: ["SDES", "dev_fatal_errs_bit[22]"], count: 7,
                source: .uevent, action: .stop, linkError: true),
            .sample(severity: .correctable, errors: [], source: .eventfd, action: .none),
            .sample(errors: ["quote\"back\\slash", "ünïcode", "tab\tnewline\n"], source: .inject),
        ]
        for entry in entries { try store.appendHistory(entry) }
        #expect(try store.history(vm: "vm1", limit: 10) == entries.reversed())
    }

    @Test func anEntryFromTheEmittedEvent() throws {
        let error = try HostError(severity: .fatal, names: ["CmpltTO", "SDES"], count: 2, source: .sysfs)
        let event = PCIErrorEvent(error, linkError: true, action: .stop)
        let entry = ErrorHistoryEntry(vm: "vm1", device: "gpu0", host: "0000:01:00.0", event, microsecondsSinceEpoch: 5)
        #expect(entry == ErrorHistoryEntry(
            vm: "vm1", device: "gpu0", host: "0000:01:00.0", microsecondsSinceEpoch: 5,
            severity: .fatal, errors: ["CmpltTO", "SDES"], count: 2, source: .sysfs,
            action: .stop, linkError: true))
    }

    @Test func countersAreStoredWithTheEntry() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample())
        var counters = DeviceErrorCounters()
        counters.record(.nonFatal, count: 3)
        try store.appendHistory(.sample(count: 3), counters: counters)
        #expect(try store.device(vm: "vm1", id: "gpu0")?.counters == counters)
    }

    @Test func countersForAnUnsavedDeviceRollBackTheEntry() throws {
        let store = try StateStore.inMemory()
        #expect(throws: StateStoreError.unknownDevice(vm: "vm1", id: "gpu0")) {
            try store.appendHistory(.sample(), counters: DeviceErrorCounters(fatal: 1))
        }
        #expect(try store.history(vm: "vm1", limit: 10).isEmpty)
    }
}
