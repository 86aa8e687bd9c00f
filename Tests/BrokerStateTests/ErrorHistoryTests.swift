import BrokerState
import ErrorEvents
import Testing

@Suite struct ErrorHistoryTests {
    @Test func errorsKeepEmissionOrder() throws {
        let store = try StateStore.inMemory()
        // The second error carries an earlier time (a clock step): emission order wins.
        let first = HistoryRecord.sampleError(time: 2_000, severity: .correctable, errors: ["RxErr"])
        let second = HistoryRecord.sampleError(time: 1_000, severity: .fatal, linkError: true)
        try store.recordHistory(first)
        try store.recordHistory(second)
        #expect(try store.errorRecords(vm: "vm1") == [first, second])
    }

    @Test func limitAndDeviceFilterAndVMScope() throws {
        let store = try StateStore.inMemory()
        for index in 0..<5 {
            try store.recordHistory(.sampleError(device: index % 2 == 0 ? "gpu0" : "nic0", time: Int64(index)))
        }
        try store.recordHistory(.sampleError(vm: "vm2", time: 99))
        #expect(try store.errorRecords(vm: "vm1", limit: 2).map(\.microsecondsSinceEpoch) == [3, 4])
        #expect(try store.errorRecords(vm: "vm1", device: "gpu0").map(\.microsecondsSinceEpoch) == [0, 2, 4])
        #expect(try store.errorRecords(vm: "vm1", device: "nic0", limit: 1).map(\.microsecondsSinceEpoch) == [3])
        #expect(try store.errorRecords(vm: "vm2").map(\.microsecondsSinceEpoch) == [99])
        #expect(try store.errorRecords(vm: "vm3").isEmpty)
    }

    @Test(arguments: [0, -1])
    func aNonPositiveLimitIsEmpty(_ limit: Int) throws {
        let store = try StateStore.inMemory()
        try store.recordHistory(.sampleError())
        #expect(try store.errorRecords(vm: "vm1", limit: limit).isEmpty)
    }

    @Test func everyFieldRoundTrips() throws {
        let store = try StateStore.inMemory()
        let records = [
            HistoryRecord.sampleError(
                severity: .fatal, errors: ["SDES", "dev_fatal_errs_bit[22]"], count: 7,
                source: .uevent, action: .stop, linkError: true),
            .sampleError(severity: .correctable, errors: [], source: .eventfd, action: .none),
            .sampleError(errors: ["quote\"back\\slash", "ünïcode", "tab\tnewline\n"], source: .inject),
        ]
        for record in records { try store.recordHistory(record) }
        #expect(try store.errorRecords(vm: "vm1") == records)
    }

    @Test func aRecordFromTheEmittedEvent() throws {
        let error = try HostError(severity: .fatal, names: ["CmpltTO", "SDES"], count: 2, source: .sysfs)
        let event = PCIErrorEvent(error, linkError: true, action: .stop)
        let record = HistoryRecord(vm: "vm1", device: "gpu0", host: "0000:01:00.0", event, microsecondsSinceEpoch: 5)
        #expect(record == HistoryRecord(
            vm: "vm1", device: "gpu0", host: "0000:01:00.0", kind: .error, severity: .fatal,
            errors: ["CmpltTO", "SDES"], count: 2, source: "sysfs", action: "stop", linkError: true,
            microsecondsSinceEpoch: 5))
    }

    @Test func countersAreStoredWithTheRecord() throws {
        let store = try StateStore.inMemory()
        try store.save(.sample())
        var counters = DeviceErrorCounters()
        counters.record(.nonFatal, count: 3)
        try store.recordHistory(.sampleError(count: 3), counters: counters)
        #expect(try store.device(vm: "vm1", id: "gpu0")?.counters == counters)
    }

    /// A device removed while its error waited for the writer: the operator keeps the record.
    @Test func countersForARemovedDeviceStillRecordTheError() throws {
        let store = try StateStore.inMemory()
        try store.recordHistory(.sampleError(), counters: DeviceErrorCounters(fatal: 1))
        #expect(try store.errorRecords(vm: "vm1") == [.sampleError()])
        #expect(try store.device(vm: "vm1", id: "gpu0") == nil)
    }
}
