import BrokerState
import ErrorEvents
import Foundation
import GRDB
import Testing

@Suite struct MigrationTests {
    @Test func aV1FileMigratesToExactlyTheSchemaOfANewFile() throws {
        try withTemporaryDirectory { directory in
            let fresh = directory.file("fresh.sqlite")
            _ = try StateStore(path: fresh)
            let frozen = directory.file("frozen.sqlite")
            try FrozenSchemaV1.makeFile(at: frozen)
            _ = try StateStore(path: frozen)
            #expect(try FrozenSchemaV1.schema(ofFileAt: fresh) == FrozenSchemaV1.schema(ofFileAt: frozen))
        }
    }

    /// registry-and-trace-log: inject-at and origin of each device, and the trace log's read position.
    @Test func aV1FileGainsInjectAtOriginAndTheTraceLogPosition() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("v1.sqlite")
            try FrozenSchemaV1.makeFile(at: path, extraSQL: """
                INSERT INTO device VALUES ('vm1', 'nic0', '0000:02:00.0', 'forward', 0, 1, 0, NULL, 0, 0, 1);
                """)
            let store = try StateStore(path: path)
            #expect(try store.device(vm: "vm1", id: "nic0")?.injectAt == nil)
            #expect(try store.device(vm: "vm1", id: "nic0")?.origin == nil)
            var device = try #require(try store.device(vm: "vm1", id: "nic0"))
            device.injectAt = "rp1"
            device.origin = "command"
            try store.save(device)
            #expect(try StateStore(path: path).device(vm: "vm1", id: "nic0") == device)
            #expect(try store.traceLogPosition(vm: "vm1") == nil)
            let position = TraceLogPosition(vm: "vm1", fileDevice: UInt64.max, fileInode: 42, offset: 1234)
            try store.saveTraceLogPosition(position)
            try store.saveTraceLogPosition(position)
            #expect(try StateStore(path: path).traceLogPosition(vm: "vm1") == position)
        }
    }

    @Test func aFileWrittenByAV1BrokerOpensWithItsData() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("v1.sqlite")
            try FrozenSchemaV1.makeFile(at: path, extraSQL: """
                INSERT INTO device VALUES
                    ('vm1', 'gpu0', '0000:01:00.0', 'stop', 1, 1, 1, 1700000000000000, 5, 2, 1),
                    ('vm1', 'nic0', '0000:02:00.0', 'forward', 0, 0, 0, NULL, 0, 0, 0);
                INSERT INTO error_history
                    (vm, device, host, time_us, severity, errors, count, source, action, link_error)
                VALUES
                    ('vm1', 'gpu0', '0000:01:00.0', 1700000000000000, 'fatal', '["SDES"]', 1, 'sysfs', 'stop', 1);
                """)
            let store = try StateStore(path: path)
            #expect(try store.devices(vm: "vm1") == [
                StoredDevice(
                    vm: "vm1", id: "gpu0", host: "0000:01:00.0", policy: DevicePolicy(.stop, autoCont: true),
                    state: PersistedDeviceState(linkError: true, stoppedByBroker: true),
                    counters: DeviceErrorCounters(correctable: 5, nonFatal: 2, fatal: 1)),
                StoredDevice(vm: "vm1", id: "nic0", host: "0000:02:00.0"),
            ])
            #expect(try store.brokerStop(vm: "vm1")
                == BrokerStop(vm: "vm1", microsecondsSinceEpoch: 1_700_000_000_000_000, devices: ["gpu0"]))
            #expect(try store.errorRecords(vm: "vm1") == [
                HistoryRecord(
                    vm: "vm1", device: "gpu0", host: "0000:01:00.0", kind: .error, severity: .fatal, errors: ["SDES"],
                    count: 1, source: "sysfs", action: "stop", linkError: true,
                    microsecondsSinceEpoch: 1_700_000_000_000_000)
            ])
        }
    }

    @Test func reopeningAppliesEachMigrationOnce() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            _ = try StateStore(path: path)
            _ = try StateStore(path: path)
            let database = try DatabaseQueue(path: path)
            #expect(try database.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations") }
                == ["v1", "v2", "aer-baseline", "registry-and-trace-log"])
        }
    }

    @Test func aFileFromANewerBrokerIsRefused() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("newer.sqlite")
            try FrozenSchemaV1.makeFile(at: path, extraSQL: "INSERT INTO grdb_migrations VALUES ('v7')")
            let error = #expect(throws: StateStoreError.self) { try StateStore(path: path) }
            guard case .incompatibleSchema(let errorPath, let detail)? = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(errorPath == path)
            #expect(detail.contains("newer broker") && detail.contains("v7"))
        }
    }

    @Test func anotherProgramsDatabaseIsRefusedAndLeftAlone() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("other.sqlite")
            let other = try DatabaseQueue(path: path)
            try other.write { try $0.execute(sql: "CREATE TABLE songs (title TEXT)") }
            try other.close()

            let error = #expect(throws: StateStoreError.self) { try StateStore(path: path) }
            guard case .incompatibleSchema(_, let detail)? = error else {
                Issue.record("unexpected \(String(describing: error))")
                return
            }
            #expect(detail.contains("another program"))
            #expect(try FrozenSchemaV1.schema(ofFileAt: path) == ["CREATE TABLE songs (title TEXT)"])
        }
    }

    @Test func aFileKilledBeforeV1CommittedIsMigrated() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("half.sqlite")
            let half = try DatabaseQueue(path: path)
            try half.write { try $0.execute(sql: "CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)") }
            try half.close()
            let store = try StateStore(path: path)
            try store.save(.sample())
            #expect(try store.devices(vm: "vm1").count == 1)
        }
    }

    @Test func anEmptyFileBecomesAStateFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("empty.sqlite")
            #expect(FileManager.default.createFile(atPath: path, contents: Data()))
            let store = try StateStore(path: path)
            try store.save(.sample())
            #expect(try store.devices(vm: "vm1").count == 1)
        }
    }
}
