import GRDB

/// The v1 schema exactly as released, kept apart from `Sources/BrokerState/StateSchema.swift`.
/// Never edit this: it stands for every v1 state file in the field. If a test comparing it
/// with the live schema fails, v1 was changed in place; put the change in a new migration.
enum FrozenSchemaV1 {
    static let sql = """
        PRAGMA application_id = 1364021314;

        CREATE TABLE device (
            vm TEXT NOT NULL,
            id TEXT NOT NULL,
            host TEXT NOT NULL,
            policy_mode TEXT NOT NULL CHECK (policy_mode IN ('report', 'forward', 'stop')),
            auto_cont INTEGER NOT NULL CHECK (auto_cont IN (0, 1)),
            link_error INTEGER NOT NULL CHECK (link_error IN (0, 1)),
            stopped_by_broker INTEGER NOT NULL CHECK (stopped_by_broker IN (0, 1)),
            stopped_by_broker_at INTEGER
                CHECK ((stopped_by_broker_at IS NOT NULL) = stopped_by_broker),
            correctable_errors INTEGER NOT NULL CHECK (correctable_errors >= 0),
            non_fatal_errors INTEGER NOT NULL CHECK (non_fatal_errors >= 0),
            fatal_errors INTEGER NOT NULL CHECK (fatal_errors >= 0),
            PRIMARY KEY (vm, id)
        ) WITHOUT ROWID;

        CREATE TABLE error_history (
            seq INTEGER PRIMARY KEY,
            vm TEXT NOT NULL,
            device TEXT NOT NULL,
            host TEXT NOT NULL,
            time_us INTEGER NOT NULL,
            severity TEXT NOT NULL CHECK (severity IN ('correctable', 'non-fatal', 'fatal')),
            errors TEXT NOT NULL CHECK (json_valid(errors) AND json_type(errors) = 'array'),
            count INTEGER NOT NULL CHECK (count >= 1),
            source TEXT NOT NULL CHECK (source IN ('eventfd', 'sysfs', 'uevent', 'inject')),
            action TEXT NOT NULL CHECK (action IN ('none', 'forward', 'stop')),
            link_error INTEGER NOT NULL CHECK (link_error IN (0, 1))
        );
        CREATE INDEX error_history_by_vm ON error_history (vm, seq);
        CREATE INDEX error_history_by_device ON error_history (vm, device, seq);

        -- GRDB's DatabaseMigrator bookkeeping, as a v1 broker leaves it.
        CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
        INSERT INTO grdb_migrations VALUES ('v1');
        """

    /// Writes a state file as a v1 broker would have, plus `extraSQL` (its data).
    static func makeFile(at path: String, extraSQL: String = "") throws {
        let database = try DatabaseQueue(path: path)
        try database.write { db in
            try db.execute(sql: sql)
            if !extraSQL.isEmpty { try db.execute(sql: extraSQL) }
        }
        try database.close()
    }

    /// The schema of a file, whitespace-normalised, for comparing files made different ways.
    static func schema(ofFileAt path: String) throws -> [String] {
        let database = try DatabaseQueue(path: path)
        defer { try? database.close() }
        return try database.read { db in
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
                .map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        }
    }
}
