import Foundation
import GRDB

/// The broker's durable state (SPEC 7): per device its host, policy, link-error flag,
/// broker-stop ownership and counters, and the operator's history.
///
/// Flags and device rows are written synchronously: each VM's event loop calls the store
/// inline, in the order the device machine asked, so "persist, then announce" needs no
/// extra choreography. History rows and AER baselines go to a background writer
/// (`HistoryWriter`), which device-row writes wait for, as they carry the same counters. One SQLite
/// connection (a `DatabaseQueue`) in WAL mode serialises all VMs; a write costs tens of
/// microseconds and survives SIGKILL of the broker once it returns (see
/// `StateConnection`). Safe to share between queues and threads.
///
/// The file closes when the last reference goes (GRDB's `DatabaseQueue` checkpoints and
/// closes in `deinit`). There is deliberately no `close()`: GRDB traps, rather than throws,
/// on use after close, and nothing committed depends on closing anyway.
package final class StateStore: Sendable {
    /// The state file, or `:memory:`.
    package let path: String
    let database: DatabaseQueue
    /// History rows and AER baselines are written here, off the VM queues (`recordHistoryLater`).
    let writer = HistoryWriter()

    /// Opens (creating the file and its directories if need be) and migrates the state file.
    package convenience init(path: String) throws(StateStoreError) {
        try Self.createDirectory(containing: path)
        try PrivateFiles.prepare(databaseAt: path)
        let database = try Self.perform(path: path) {
            try DatabaseQueue(path: path, configuration: StateConnection.configuration(wal: true))
        }
        try self.init(database: database, path: path)
    }

    /// A private store that vanishes with the object: for tests and `demo`.
    package static func inMemory() throws(StateStoreError) -> StateStore {
        let path = ":memory:"
        let database = try perform(path: path) {
            try DatabaseQueue(configuration: StateConnection.configuration(wal: false))
        }
        return try StateStore(database: database, path: path)
    }

    private init(database: DatabaseQueue, path: String) throws(StateStoreError) {
        try Self.perform(path: path) { try StateSchema.migrate(database, path: path) }
        self.database = database
        self.path = path
    }

    // MARK: - Access, with every error mapped to StateStoreError

    func read<T>(_ body: (Database) throws -> T) throws(StateStoreError) -> T {
        try perform { try database.read(body) }
    }

    func write<T>(_ body: (Database) throws -> T) throws(StateStoreError) -> T {
        try perform {
            try database.writeWithoutTransaction { db in try StateConnection.write(db, body) }
        }
    }

    private func perform<T>(_ body: () throws -> T) throws(StateStoreError) -> T {
        try Self.perform(path: path, body)
    }

    private static func perform<T>(path: String, _ body: () throws -> T) throws(StateStoreError) -> T {
        do {
            return try body()
        } catch let error as StateStoreError {
            throw error
        } catch let error as DatabaseError {
            throw StateStoreError(error, path: path)
        } catch {
            throw .database(path: path, detail: "\(error)")
        }
    }

    private static func createDirectory(containing path: String) throws(StateStoreError) {
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .cannotOpen(path: path, detail: "cannot create directory \(directory): \(error.localizedDescription)")
        }
    }
}

extension StateStoreError {
    init(_ error: DatabaseError, path: String) {
        let detail = error.message ?? "\(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            self = .notADatabase(path: path, detail: detail)
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY:
            self = .cannotOpen(path: path, detail: detail)
        default:
            self = .database(path: path, detail: "\(error.resultCode): \(detail)")
        }
    }
}

extension StateStore {
    /// `PRAGMA integrity_check`: "ok", or SQLite's list of what is damaged.
    package func integrityCheck() throws(StateStoreError) -> String {
        try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "\n") }
    }
}
