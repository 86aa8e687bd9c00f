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
            try writer.appendHistory(.sample(severity: .fatal, linkError: true))

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
            #expect(try restarted.history(vm: "vm1", limit: 5).map(\.severity) == [.fatal])
            withExtendedLifetime(writer) {}
        }
    }

    @Test func theFileIsInWALMode() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            _ = try StateStore(path: path)
            let probe = try DatabaseQueue(path: path)
            #expect(try probe.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        }
    }

    /// The flag's commit fsyncs the WAL (FULL); the history's does not (NORMAL).
    @Test func flagWritesAreFullyAndHistoryWritesNormallySynchronous() throws {
        try withTemporaryDirectory { directory in
            let database = try DatabaseQueue(
                path: directory.file("state.sqlite"), configuration: StateConnection.configuration(wal: true))
            let synchronous = { (db: Database) in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
            let levels = try database.writeWithoutTransaction { db in
                (
                    flag: try StateConnection.write(db, .powerLoss, synchronous),
                    between: try synchronous(db),
                    history: try StateConnection.write(db, .processCrash, synchronous)
                )
            }
            // SQLite's numbering: 1 is NORMAL, 2 is FULL.
            #expect(levels.flag == 2)
            #expect(levels.between == 1)
            #expect(levels.history == 1)
        }
    }

    @Test func aFailedWriteLeavesTheConnectionAtItsDefault() throws {
        let database = try DatabaseQueue(configuration: StateConnection.configuration(wal: false))
        struct Refused: Error {}
        let after = try database.writeWithoutTransaction { db in
            #expect(throws: Refused.self) {
                try StateConnection.write(db, .powerLoss) { _ in throw Refused() }
            }
            return try Int.fetchOne(db, sql: "PRAGMA synchronous")
        }
        #expect(after == 1)
    }
}
