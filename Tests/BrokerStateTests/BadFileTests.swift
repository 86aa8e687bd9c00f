import BrokerState
import Foundation
import GRDB
import Testing

@Suite struct BadFileTests {
    @Test func garbageIsNotADatabase() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
            #expect(FileManager.default.createFile(atPath: path, contents: garbage))
            try expectNotADatabase(path)
        }
    }

    @Test func aDamagedHeaderIsNotADatabase() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            try StateStore(path: path).save(.sample())
            // Checkpointed by the clean close on release; now overwrite the magic string.
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            try handle.write(contentsOf: Data("not an sqlite file".utf8))
            try handle.close()
            try expectNotADatabase(path)
        }
    }

    @Test func aDirectoryCannotBeOpened() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            #expect {
                try StateStore(path: path)
            } throws: { error in
                guard case .cannotOpen(let errorPath, _)? = error as? StateStoreError else { return false }
                return errorPath == path
            }
        }
    }

    @Test func missingDirectoriesAreCreated() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("a/b/c/state.sqlite")
            let store = try StateStore(path: path)
            try store.save(.sample())
            #expect(FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func aDirectoryThatCannotBeCreatedIsReported() throws {
        try withTemporaryDirectory { directory in
            let blocker = directory.file("blocker")
            #expect(FileManager.default.createFile(atPath: blocker, contents: Data()))
            let path = blocker + "/state.sqlite"
            #expect {
                try StateStore(path: path)
            } throws: { error in
                guard case .cannotOpen(_, let detail)? = error as? StateStoreError else { return false }
                return detail.contains(blocker)
            }
        }
    }

    @Test func aValueThisVersionCannotReadIsNamed() throws {
        try withTemporaryDirectory { directory in
            let path = directory.file("state.sqlite")
            _ = try StateStore(path: path)
            // As a hand edit (or a newer broker) might leave it, past the CHECK constraints.
            let editor = try DatabaseQueue(path: path)
            try editor.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
                try db.execute(sql: """
                    INSERT INTO device VALUES ('vm1', 'gpu0', '0000:01:00.0', 'panic', 0, 0, 0, NULL, 0, 0, 0)
                    """)
            }
            try editor.close()
            let store = try StateStore(path: path)
            #expect(throws: StateStoreError.invalidValue(
                table: "device", column: "policy_mode", detail: "unknown value 'panic'")
            ) {
                try store.device(vm: "vm1", id: "gpu0")
            }
        }
    }

    private func expectNotADatabase(_ path: String) throws {
        let error = #expect(throws: StateStoreError.self) { try StateStore(path: path) }
        guard case .notADatabase(let errorPath, _)? = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(errorPath == path)
        #expect(error?.description.contains("move it aside") == true)
    }
}
