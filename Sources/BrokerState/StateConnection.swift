import GRDB

/// The set-up of the store's one SQLite connection, and why it is durable enough.
///
/// WAL with `synchronous=NORMAL`. A commit appends the transaction's pages to the `-wal`
/// file with write(2) before it returns, whatever `synchronous` says; from then on the
/// bytes are in the kernel's page cache, which belongs to the file, not to the process.
/// A SIGKILL (or any crash of the broker) one instruction later loses nothing: the next
/// process to open the file replays the committed frames from the WAL (checksummed, ended
/// by a commit frame). `synchronous` only decides whether SQLite also fsyncs the WAL at
/// each commit, which matters only when the kernel itself goes away (power loss, panic):
/// then NORMAL may lose the last commits, never half of one, and never corrupts the file.
///
/// The spec asks that the flag survive broker restarts; a kernel crash takes the VM (and
/// every client that saw the event) with it. Not paying an fsync keeps a write at tens of
/// microseconds; with FULL the flag write measured 0.25 ms on an idle disk and 4 ms
/// (12 ms worst) under a concurrent build, on the VM's event loop. Should power-loss durability
/// of the flag ever be wanted, it is `PRAGMA synchronous = FULL` around `saveState`.
enum StateConnection {
    static func configuration(wal: Bool) -> Configuration {
        var config = Configuration()
        config.label = "BrokerState"
        // An operator's sqlite3 (or a second broker by mistake) may hold the write lock for
        // a moment: wait for it rather than fail a flag write, but not forever.
        config.busyMode = .timeout(2)
        config.prepareDatabase { db in
            // Set here rather than through `Configuration.journalMode = .wal`, so the
            // durability argument above does not rest on a default GRDB might change.
            if wal {
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                guard mode == "wal" else {
                    throw DatabaseError(message: "could not switch to WAL (journal_mode is \(mode ?? "unknown"))")
                }
            }
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        return config
    }

    /// Runs `body` in one IMMEDIATE transaction: it takes the write lock up front, so a
    /// busy database is waited for by the busy handler instead of failing halfway through.
    static func write<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(.immediate) {
            result = try body(db)
            return .commit
        }
        return result!
    }
}
