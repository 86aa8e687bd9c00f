import BrokerState
import BrokerTesting
import ErrorEvents
import Foundation
import GRDB
import Testing

/// The operator's history: every kind of record, its filters, the summary, retention,
/// and the background writer (its cost measured, since a VM's queue hands it records).
@Suite struct HistoryRecordTests {
    static let start: Int64 = 1_700_000_000_000_000

    static func records() -> [HistoryRecord] {
        [
            HistoryRecord(vm: "vm1", device: "gpu0", host: "0000:3b:00.0", kind: .error, severity: .fatal,
                          errors: ["SDES", "TLP"], count: 2, source: "sysfs", action: "forward", linkError: true,
                          microsecondsSinceEpoch: start),
            HistoryRecord(vm: "vm1", device: "gpu0", host: "0000:3b:00.0", kind: .flagSet, source: "broker",
                          linkError: true, cause: "fatal error", microsecondsSinceEpoch: start + 1),
            HistoryRecord(vm: "vm1", device: "gpu0", host: "0000:3b:00.0", kind: .linkReset, source: "guest",
                          action: "stop", cause: "guest reset of a flagged link", microsecondsSinceEpoch: start + 2_000_000),
            HistoryRecord(vm: "vm1", device: "gpu0", host: "0000:3b:00.0", kind: .stop, source: "broker", action: "stop",
                          cause: "guest reset of a flagged link, policy forward", microsecondsSinceEpoch: start + 2_000_001),
            HistoryRecord(vm: "vm2", device: "nic0", host: "0000:5e:00.0", kind: .error, severity: .correctable,
                          errors: ["RxErr"], source: "uevent", action: "none", linkError: false,
                          microsecondsSinceEpoch: start + 3_000_000),
            HistoryRecord(vm: "vm1", device: "gpu0", host: "0000:3b:00.0", kind: .flagCleared, source: "operator",
                          linkError: false, cause: "operator uid=0 pid=4242", microsecondsSinceEpoch: start + 4_000_000),
        ]
    }

    private func filled(_ directory: TemporaryDirectory) throws -> StateStore {
        let store = try StateStore(path: directory.file("state.sqlite"))
        for record in Self.records() { try store.recordHistory(record) }
        return store
    }

    @Test func everyKindComesBackAsRecorded() throws {
        try withTemporaryDirectory { directory in
            let store = try filled(directory)
            let read = try store.historyRecords(HistoryQuery())
            #expect(read.map(\.sequence) == [1, 2, 3, 4, 5, 6])
            #expect(read.map { var copy = $0; copy.sequence = nil; return copy } == Self.records())
        }
    }

    @Test func filtersNarrowByVMDeviceTimeKindAndLimit() throws {
        try withTemporaryDirectory { directory in
            let store = try filled(directory)
            #expect(try store.historyRecords(HistoryQuery(vm: "vm2")).map(\.device) == ["nic0"])
            #expect(try store.historyRecords(HistoryQuery(vm: "vm1", device: "gpu0")).count == 5)
            #expect(try store.historyRecords(HistoryQuery(sinceMicroseconds: Self.start + 2_000_001)).map(\.kind)
                == [.stop, .error, .flagCleared])
            #expect(try store.historyRecords(HistoryQuery(kinds: [.stop, .cont])).map(\.kind) == [.stop])
            // The newest two, oldest first.
            #expect(try store.historyRecords(HistoryQuery(limit: 2)).map(\.kind) == [.error, .flagCleared])
        }
    }

    @Test func errorEntriesStillReadAsBefore() throws {
        try withTemporaryDirectory { directory in
            let store = try filled(directory)
            let entries = try store.history(vm: "vm1", limit: 10)
            #expect(entries.map(\.errors) == [["SDES", "TLP"]])
            #expect(entries.first?.source == .sysfs && entries.first?.action == .forward)
        }
    }

    @Test func summaryCountsPerDeviceKindAndSeverity() throws {
        try withTemporaryDirectory { directory in
            let store = try filled(directory)
            let summary = try store.historySummary(HistoryQuery(vm: "vm1"))
            #expect(summary.map(\.kind) == [.error, .flagSet, .linkReset, .stop, .flagCleared])
            #expect(summary.first?.severity == .fatal && summary.first?.records == 1 && summary.first?.signals == 2)
        }
    }

    @Test func retentionDropsByAgeThenByCount() throws {
        try withTemporaryDirectory { directory in
            let store = try filled(directory)
            let day: Int64 = 86_400 * 1_000_000
            // Now is 1 day + 2.5 s after start: a 1-day limit drops the first four.
            let deleted = try store.pruneHistory(HistoryRetention(maxAgeDays: 1, maxRows: 100),
                                                 now: Self.start + day + 2_500_000)
            #expect(deleted == 4)
            #expect(try store.pruneHistory(HistoryRetention(maxAgeDays: 1000, maxRows: 1), now: Self.start) == 1)
            #expect(try store.historyRecords(HistoryQuery()).map(\.kind) == [.flagCleared])
        }
    }

    @Test func aV1ErrorHistoryMovesIntoTheHistory() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("v1.sqlite")
            try FrozenSchemaV1.makeFile(at: path, extraSQL: """
                INSERT INTO error_history
                    (vm, device, host, time_us, severity, errors, count, source, action, link_error)
                VALUES
                    ('vm1', 'gpu0', '0000:01:00.0', 1700000000000000, 'fatal', '["SDES"]', 1, 'sysfs', 'stop', 1);
                """)
            let store = try StateStore(path: path)
            let records = try store.historyRecords(HistoryQuery())
            #expect(records.count == 1 && records.first?.kind == .error && records.first?.cause == nil)
        }
    }

    /// The VM queue's side of a history write is a dispatch onto the writer's queue; the
    /// writer's own cost is the SQLite insert. Both are printed: they are the measurement.
    @Test func backgroundWritesCostTheCallerMicroseconds() throws {
        try withTemporaryDirectory { directory in
            let store = try StateStore(path: directory.file("state.sqlite"))
            let record = HistoryRecord(vm: "vm1", device: "gpu0", host: "0000:3b:00.0", kind: .linkReset, source: "guest")
            let clock = ContinuousClock()
            var enqueue: [Duration] = []
            let total = clock.measure {
                for _ in 0..<2000 { enqueue.append(clock.measure { store.recordHistoryLater(record) }) }
                store.waitForHistoryWrites()
            }
            var direct: [Duration] = []
            for _ in 0..<1000 { direct.append(try clock.measure { try store.recordHistory(record) }) }
            enqueue.sort()
            direct.sort()
            print("history write: caller (enqueue) median \(enqueue[1000]) p99 \(enqueue[1980]); "
                  + "insert median \(direct[500]) p99 \(direct[990]); 2000 background writes drained in \(total)")
            #expect(try store.historyRecords(HistoryQuery(limit: 10_000)).count == 3000)
            #expect(enqueue[1000] < direct[500])
        }
    }
}
