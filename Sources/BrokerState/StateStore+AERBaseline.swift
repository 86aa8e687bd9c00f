import GRDB

extension StateStore {
    /// Stores the counters a device's errors have been reported up to.
    package func saveAERBaseline(vm: String, device: String, host: String, counters: String) throws(StateStoreError) {
        try write { db in
            try db.cachedStatement(sql: """
                INSERT INTO aer_baseline (vm, device, host, counters) VALUES (?, ?, ?, ?)
                ON CONFLICT (vm, device) DO UPDATE SET host = excluded.host, counters = excluded.counters
                """).execute(arguments: [vm, device, host, counters])
        }
    }

    /// The stored counters of a device, if they are for the same host address.
    package func aerBaseline(vm: String, device: String, host: String) throws(StateStoreError) -> String? {
        try read { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT counters FROM aer_baseline WHERE vm = ? AND device = ? AND host = ?"),
                                arguments: [vm, device, host])
        }
    }
}
