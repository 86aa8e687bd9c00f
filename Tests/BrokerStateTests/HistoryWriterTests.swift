import BrokerState
import Dispatch
import ErrorEvents
import GRDB
import Testing

/// The store's background writer: what a VM's event loop hands it lands, in order, behind the
/// device rows that must not be overtaken, and a writer that falls behind drops and counts.
@Suite struct HistoryWriterTests {
    static let host = "0000:01:00.0"
    /// Recent times: retention (90 days by default) prunes at every 1000th write.
    static let now = WallClock.microsecondsSinceEpoch()

    @Test func writesLandInTheOrderHandedOver() throws {
        try withTemporaryDirectory { directory in
            let store = try StateStore(path: directory.file("state.sqlite"))
            try store.save(.sample())
            let kinds = HistoryRecord.Kind.allCases
            var counters = DeviceErrorCounters()
            for index in 0..<3000 {
                let kind = kinds[index % kinds.count]
                var record = HistoryRecord(vm: "vm1", device: "gpu0", host: Self.host, kind: kind,
                                           microsecondsSinceEpoch: Self.now + Int64(index))
                if kind == .error {
                    counters.record(.nonFatal, count: 1)
                    record.severity = .nonFatal
                    #expect(store.recordHistoryLater(record, counters: counters) == .queued)
                } else {
                    #expect(store.recordHistoryLater(record) == .queued)
                }
                if index % 100 == 99 {
                    store.saveAERBaselineLater(vm: "vm1", device: "gpu0", host: Self.host, counters: "at \(index)")
                }
            }
            store.waitForHistoryWrites()
            let records = try store.historyRecords(HistoryQuery(limit: 10_000))
            // Compared as Bools: a failure would otherwise print 3000 values twice.
            #expect(records.count == 3000)
            #expect((records.map(\.microsecondsSinceEpoch) == (0..<3000).map { Self.now + Int64($0) }) as Bool)
            #expect((records.map(\.kind) == (0..<3000).map { kinds[$0 % kinds.count] }) as Bool)
            #expect(try store.device(vm: "vm1", id: "gpu0")?.counters == counters)
            #expect(try store.aerBaseline(vm: "vm1", device: "gpu0", host: Self.host) == "at 2999")
            #expect(store.droppedHistoryWrites == 0)
        }
    }

    /// A device row carries the counters too: written after the queued error rows, it is
    /// what stays, and every row queued before it is in the file when `save` returns.
    @Test func aDeviceRowWaitsForTheQueuedErrors() throws {
        try withTemporaryDirectory { directory in
            let store = try StateStore(path: directory.file("state.sqlite"))
            try store.save(.sample())
            var counters = DeviceErrorCounters()
            for index in 0..<500 {
                counters.record(.correctable, count: 1)
                store.recordHistoryLater(.sampleError(time: Self.now + Int64(index)), counters: counters)
            }
            try store.save(.sample(policy: DevicePolicy(.stop), counters: counters))
            #expect(try store.historyRecords(HistoryQuery(limit: 1000)).count == 500)
            #expect(try store.device(vm: "vm1", id: "gpu0")?.counters == counters)
            try store.removeDevice(vm: "vm1", id: "gpu0")
            store.recordHistoryLater(.sampleError(time: Self.now + 500), counters: counters)
            store.waitForHistoryWrites()
            #expect(try store.device(vm: "vm1", id: "gpu0") == nil)
            #expect(try store.historyRecords(HistoryQuery(limit: 1000)).count == 501)
        }
    }

    /// An operator's sqlite3 (here a second connection) holds the write lock: the writer
    /// waits, its queue fills, and what does not fit is dropped, counted, and said so.
    @Test func aWriterTooFarBehindDropsAndCounts() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            let store = try StateStore(path: path)
            let lock = try WriteLockHolder(path: path)
            var handOffs: [HistoryHandOff] = []
            for index in 0..<6000 {
                handOffs.append(store.recordHistoryLater(.sampleError(time: Self.now + Int64(index))))
            }
            lock.release()
            store.waitForHistoryWrites()
            let queued = handOffs.prefix { $0 == .queued }.count
            #expect(queued > 1000 && queued < 6000)
            #expect(handOffs[queued...].enumerated().allSatisfy { $0.element == .dropped(total: $0.offset + 1) })
            #expect(store.droppedHistoryWrites == 6000 - queued)
            let landed = try store.historyRecords(HistoryQuery(limit: 10_000))
            #expect(landed.count == queued)
            #expect((landed.map(\.microsecondsSinceEpoch) == (0..<queued).map { Self.now + Int64($0) }) as Bool)
        }
    }

    /// The event path's cost of a history row, before (written inline, as `announce` did)
    /// and after (handed to the writer), next to the flag write that stays inline. Printed:
    /// it is the measurement.
    @Test func theEventPathPaysMicrosecondsNotAnInsert() throws {
        try withTemporaryDirectory { directory in
            let store = try StateStore(path: directory.file("state.sqlite"))
            try store.save(.sample())
            let counters = DeviceErrorCounters(nonFatal: 1)
            let clock = ContinuousClock()
            var inline: [Duration] = []
            var handedOver: [Duration] = []
            var flag: [Duration] = []
            for index in 0..<1000 {
                let record = HistoryRecord.sampleError(time: Self.now + Int64(index))
                inline.append(try clock.measure { try store.recordHistory(record, counters: counters) })
                let state: PersistedDeviceState = index % 2 == 0 ? .flagged : .clean
                flag.append(try clock.measure { try store.saveState(vm: "vm1", id: "gpu0", state) })
            }
            for index in 0..<1000 {
                let record = HistoryRecord.sampleError(time: Self.now + Int64(1000 + index))
                handedOver.append(clock.measure { store.recordHistoryLater(record, counters: counters) })
            }
            store.waitForHistoryWrites()
            func median(_ samples: [Duration]) -> String { "\(samples.sorted()[500])" }
            func p99(_ samples: [Duration]) -> String { "\(samples.sorted()[990])" }
            print("history row on the event path: inline median \(median(inline)) p99 \(p99(inline)); "
                  + "handed to the writer median \(median(handedOver)) p99 \(p99(handedOver)); "
                  + "flag write (stays inline) median \(median(flag)) p99 \(p99(flag))")
            #expect(try store.historyRecords(HistoryQuery(limit: 10_000)).count == 2000)
            #expect(handedOver.sorted()[500] < inline.sorted()[500])
        }
    }
}

/// A second connection holding SQLite's write lock until `release`, as an operator's
/// `sqlite3` in a `BEGIN IMMEDIATE` would.
final class WriteLockHolder: Sendable {
    private let release_ = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    init(path: String) throws {
        let database = try DatabaseQueue(path: path)
        let held = DispatchSemaphore(value: 0)
        let release = release_, done = done
        DispatchQueue.global().async {
            _ = try? database.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    held.signal()
                    release.wait()
                    return .rollback
                }
            }
            done.signal()
        }
        guard held.wait(timeout: .now() + 30) == .success else { throw LockNotTaken() }
    }

    struct LockNotTaken: Error {}

    func release() {
        release_.signal()
        done.wait()
    }
}
