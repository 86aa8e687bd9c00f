import GRDB

/// The state file's schema as versioned migrations.
///
/// A released migration never changes: a new need is a new migration ("v2", ...), so every
/// file ever written upgrades along one path. `Tests/BrokerStateTests` keeps a frozen copy
/// of v1 and fails if this one drifts. For the same reason the SQL spells its value lists
/// out instead of interpolating `Severity.allCases` and friends: a new case in the domain
/// must come with a migration, not silently change what v1 means.
enum StateSchema {
    /// `PRAGMA application_id`, ASCII "QMPB": marks the file as the broker's, so that a
    /// `--state-dir` pointing at some other program's database is refused, not migrated.
    static let applicationID: Int32 = 0x514D_5042

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1", migrate: v1)
        migrator.registerMigration("v2", migrate: v2)
        migrator.registerMigration("aer-baseline", migrate: aerBaseline)
        migrator.registerMigration("registry-and-trace-log", migrate: registryAndTraceLog)
        return migrator
    }()

    /// Refuses files that are not ours or are newer than us, then applies what is missing.
    static func migrate(_ database: DatabaseQueue, path: String) throws {
        try database.read { db in try checkCompatible(db, path: path) }
        try migrator.migrate(database)
    }

    private static func checkCompatible(_ db: Database, path: String) throws {
        let applied = try migrator.appliedIdentifiers(db)
        let unknown = applied.subtracting(migrator.migrations).sorted()
        if !unknown.isEmpty {
            // A newer broker may have moved the flags; reading the old places could
            // silently lose one. Downgrading needs a deliberate operator decision.
            throw StateStoreError.incompatibleSchema(
                path: path,
                detail: "written by a newer broker (migrations \(unknown.joined(separator: ", ")) are unknown here)")
        }
        // GRDB creates its bookkeeping table outside the v1 transaction: a broker killed
        // between the two leaves a file holding only that table, still ours to migrate.
        let isEmpty = try Int.fetchOne(db, sql: """
            SELECT count(*) FROM sqlite_master
            WHERE name <> 'grdb_migrations' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
            """) == 0
        let id = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        if !isEmpty && id != applicationID {
            throw StateStoreError.incompatibleSchema(
                path: path,
                detail: "an SQLite database of another program (application_id \(id))")
        }
    }

    private static func v1(_ db: Database) throws {
        try db.execute(sql: """
            PRAGMA application_id = \(applicationID);

            -- One row per watched device. Booleans are 0/1; counters saturate at the
            -- largest INTEGER (see StoredCount). stopped_by_broker_at is set exactly
            -- while stopped_by_broker is: when the broker's ownership of the pause began.
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

            -- Append-only: one row per VFIO_PCI_ERROR emitted. Not tied to device rows,
            -- so the record outlives a vfio-device-del. seq is the order of emission;
            -- time_us (microseconds since the epoch) is informational and may step.
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
            """)
    }

    /// v2: one operator history of errors, link resets, stops, conts and flag changes
    /// (error_history held errors only, and its CHECKs on source and action would refuse
    /// new sources). Existing rows move over as kind 'error', keeping their order.
    private static func v2(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE history (
                seq INTEGER PRIMARY KEY,
                time_us INTEGER NOT NULL,
                vm TEXT NOT NULL,
                device TEXT NOT NULL,
                host TEXT NOT NULL,
                kind TEXT NOT NULL
                    CHECK (kind IN ('error', 'link-reset', 'stop', 'cont', 'flag-set', 'flag-cleared')),
                severity TEXT CHECK (severity IN ('correctable', 'non-fatal', 'fatal')),
                errors TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(errors) AND json_type(errors) = 'array'),
                count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
                source TEXT,
                action TEXT,
                link_error INTEGER CHECK (link_error IN (0, 1)),
                cause TEXT
            );
            INSERT INTO history (seq, time_us, vm, device, host, kind, severity, errors, count, source, action, link_error)
                SELECT seq, time_us, vm, device, host, 'error', severity, errors, count, source, action, link_error
                FROM error_history ORDER BY seq;
            DROP TABLE error_history;
            CREATE INDEX history_by_vm ON history (vm, seq);
            CREATE INDEX history_by_device ON history (vm, device, seq);
            CREATE INDEX history_by_time ON history (time_us);
            """)
    }

    /// The AER counters each device's errors were last reported up to, so that a broker
    /// coming back reports what the counters show happened while it was away. Opaque text
    /// (VFIOWatch's `DeviceAERCounters.baselineText`); not tied to device rows.
    private static func aerBaseline(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE aer_baseline (
                vm TEXT NOT NULL,
                device TEXT NOT NULL,
                host TEXT NOT NULL,
                counters TEXT NOT NULL,
                PRIMARY KEY (vm, device)
            ) WITHOUT ROWID;
            """)
    }

    /// Devices come back after a restart exactly as added: where errors
    /// are injected, and how the device came to be watched (no row: a device a v1 broker
    /// wrote, origin unknown). A table of its own, so v1's `device` stays as frozen. The
    /// trace log's read position per VM, so a guest link reset logged while the broker
    /// was down is still seen.
    private static func registryAndTraceLog(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE device_registration (
                vm TEXT NOT NULL,
                id TEXT NOT NULL,
                inject_at TEXT,
                origin TEXT NOT NULL CHECK (origin IN ('config', 'command', 'discovered')),
                PRIMARY KEY (vm, id),
                FOREIGN KEY (vm, id) REFERENCES device (vm, id) ON DELETE CASCADE
            ) WITHOUT ROWID;

            -- file_device and file_inode identify the file the offset belongs to (stat's
            -- st_dev and st_ino, as bit patterns): another file at the path starts over.
            CREATE TABLE trace_log (
                vm TEXT NOT NULL PRIMARY KEY,
                file_device INTEGER NOT NULL,
                file_inode INTEGER NOT NULL,
                offset INTEGER NOT NULL CHECK (offset >= 0)
            ) WITHOUT ROWID;
            """)
    }
}
