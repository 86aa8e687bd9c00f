import ErrorEvents
import Foundation
import GRDB
import Testing

@testable import BrokerState

/// What a broker restarted after SIGKILL finds. A killed process gets no chance to close,
/// checkpoint or fsync; what it committed is in the files (through the page cache) and
/// nowhere else. So "visible to another connection, and to a copy of the files taken while
/// the writer is still open" is exactly "survives SIGKILL".
@Suite struct DurabilityTests {
    @Test func flagSurvivesCloseAndReopen() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            do {
                let store = try StateStore(path: path)
                try store.save(.sample())
                try store.saveState(vm: "vm1", id: "gpu0", .stoppedByBroker)
            }  // the store is released here, closing (and checkpointing) the file
            let reopened = try StateStore(path: path)
            #expect(try reopened.device(vm: "vm1", id: "gpu0")?.state == .stoppedByBroker)
        }
    }

    @Test func committedFlagIsVisibleToAnotherConnectionBeforeTheWriterCloses() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            let writer = try StateStore(path: path)
            try writer.save(.sample())
            try writer.saveState(vm: "vm1", id: "gpu0", .flagged)

            let restarted = try StateStore(path: path)
            #expect(try restarted.device(vm: "vm1", id: "gpu0")?.state == .flagged)
            withExtendedLifetime(writer) {}
        }
    }

    @Test func committedFlagIsInTheFilesWithoutAnyClose() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            let writer = try StateStore(path: path)
            try writer.save(.sample())
            try writer.saveState(vm: "vm1", id: "gpu0", .stoppedByBroker)
            try writer.recordHistory(.sampleError(severity: .fatal, linkError: true))

            // The commit sits in the WAL, not yet checkpointed into the main file.
            let walSize = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int
            #expect((walSize ?? 0) > 0)

            // Copy what a killed process leaves behind, leaving out the shared-memory index,
            // which the next opener rebuilds from the WAL (SQLite's crash recovery).
            let copy = directory.file("after-kill.sqlite")
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal")

            let restarted = try StateStore(path: copy)
            #expect(try restarted.device(vm: "vm1", id: "gpu0")?.state == .stoppedByBroker)
            #expect(try restarted.errorRecords(vm: "vm1").map(\.severity) == [.fatal])
            withExtendedLifetime(writer) {}
        }
    }

    /// The settings the durability argument in `StateConnection` rests on, read from the
    /// store's own connection.
    @Test func theConnectionIsWALWithNormalSync() throws {
        try withTemporaryDirectory { directory in
            let store = try StateStore(path: directory.file("state.sqlite"))
            let settings = try store.database.read { db in
                (
                    journal: try String.fetchOne(db, sql: "PRAGMA journal_mode"),
                    synchronous: try Int.fetchOne(db, sql: "PRAGMA synchronous")
                )
            }
            #expect(settings.journal == "wal")
            #expect(settings.synchronous == 1)  // SQLite's number for NORMAL
        }
    }

    @Test func aFailedWriteCommitsNothing() throws {
        let store = try StateStore.inMemory()
        struct Refused: Error {}
        #expect(throws: StateStoreError.self) {
            try store.write { db in
                try db.execute(sql: "INSERT INTO device VALUES ('vm1', 'gpu0', 'h', 'stop', 0, 1, 0, NULL, 0, 0, 0)")
                throw Refused()
            }
        }
        #expect(try store.device(vm: "vm1", id: "gpu0") == nil)
    }
}
