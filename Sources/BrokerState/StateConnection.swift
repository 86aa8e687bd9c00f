import GRDB

/// How hard a commit must reach the disk before the write returns.
///
/// In WAL mode a commit appends the transaction's pages to the `-wal` file with write(2)
/// before it returns, whatever `synchronous` says. Once write(2) returns, the bytes are in
/// the kernel's page cache, which belongs to the file, not the process: a SIGKILL one
/// instruction later loses nothing, and the next process to open the file replays the
/// committed frames from the WAL (checksummed, ended by a commit frame). `synchronous`
/// only decides whether SQLite also fsyncs the WAL at commit, which matters when the
/// kernel itself goes away: power loss, a panic, a hard reset.
enum Durability {
    /// `synchronous=NORMAL`: survives SIGKILL and any crash of the broker; after a power
    /// loss or kernel crash the last commits may be missing (never half-applied).
    /// For the error history and counters: frequent, and not worth an fsync each.
    case processCrash
    /// `synchronous=FULL`: the WAL is fsynced before the commit returns, so the write also
    /// survives power loss and kernel crashes. For the link-error flag and the broker's
    /// ownership of a pause: rare transitions, and a fatal PCIe error is exactly when a
    /// host may go down (surprise link down, machine check) with the flag still unsaved.
    case powerLoss
}

/// The set-up of the store's one SQLite connection.
enum StateConnection {
    static func configuration(wal: Bool) -> Configuration {
        var config = Configuration()
        config.label = "BrokerState"
        // An operator's sqlite3 (or a second broker by mistake) may hold the write lock for
        // a moment: wait for it rather than fail a flag write, but not forever.
        config.busyMode = .timeout(2)
        config.prepareDatabase { db in
            // Not `Configuration.journalMode = .wal`: GRDB would set synchronous=NORMAL
            // after us. Here the per-write choice of `Durability` stays ours.
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

    /// Runs `body` in one IMMEDIATE transaction committed with the given durability.
    static func write<T>(
        _ db: Database, _ durability: Durability, _ body: (Database) throws -> T
    ) throws -> T {
        switch durability {
        case .processCrash:
            return try transaction(db, body)
        case .powerLoss:
            // synchronous cannot change inside a transaction, so it brackets it. Should the
            // reset fail, the connection stays at FULL: slower, never less safe.
            try db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute()
            defer { try? db.cachedStatement(sql: "PRAGMA synchronous = NORMAL").execute() }
            return try transaction(db, body)
        }
    }

    // IMMEDIATE takes the write lock up front, so a busy database is waited for by the busy
    // handler instead of failing halfway through with SQLITE_BUSY.
    private static func transaction<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(.immediate) {
            result = try body(db)
            return .commit
        }
        return result!
    }
}
