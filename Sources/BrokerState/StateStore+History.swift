import ErrorEvents
import GRDB

extension StateStore {
    /// Appends one emitted `VFIO_PCI_ERROR`. With `counters`, the device's counters are
    /// stored in the same transaction, so history and counters never disagree on disk.
    public func appendHistory(
        _ entry: ErrorHistoryEntry, counters: DeviceErrorCounters? = nil
    ) throws(StateStoreError) {
        let arguments = try HistoryColumns.arguments(HistoryRecord(entry))
        try write { db in
            try db.cachedStatement(sql: HistoryColumns.insert).execute(arguments: arguments)
            if let counters {
                var counterArguments = DeviceColumns.counterArguments(counters)
                counterArguments += ["vm": entry.vm, "id": entry.device]
                try db.cachedStatement(sql: DeviceColumns.updateCounters).execute(arguments: counterArguments)
                guard db.changesCount == 1 else {
                    throw StateStoreError.unknownDevice(vm: entry.vm, id: entry.device)
                }
            }
        }
    }

    /// The newest `limit` error entries of the VM (or of one of its devices), newest first.
    public func history(vm: String, device: String? = nil, limit: Int) throws(StateStoreError) -> [ErrorHistoryEntry] {
        try historyRecords(HistoryQuery(vm: vm, device: device, kinds: [.error], limit: limit))
            .reversed().map(HistoryColumns.errorEntry)
    }

    /// Records any history line: a link reset, stop, cont, flag set or cleared (errors
    /// come through `appendHistory` with their counters). For the operator's record only:
    /// nothing the broker decides reads it back.
    public func recordHistory(_ record: HistoryRecord) throws(StateStoreError) {
        let arguments = try HistoryColumns.arguments(record)
        try write { db in try db.cachedStatement(sql: HistoryColumns.insert).execute(arguments: arguments) }
    }

    /// The newest `query.limit` matching records, oldest first (as a log reads).
    public func historyRecords(_ query: HistoryQuery) throws(StateStoreError) -> [HistoryRecord] {
        guard query.limit > 0 else { return [] }
        let filter = HistoryColumns.filter(query)
        var arguments = filter.arguments
        arguments += [query.limit]
        return try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM (SELECT \(HistoryColumns.columns) FROM history \(filter.sql) ORDER BY seq DESC LIMIT ?)
                ORDER BY seq
                """, arguments: arguments)
            return try rows.map(HistoryColumns.decode)
        }
    }

    /// Per VM, device, kind and severity: how many records and signals, first and last.
    public func historySummary(_ query: HistoryQuery) throws(StateStoreError) -> [HistorySummaryRow] {
        let filter = HistoryColumns.filter(query)
        return try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT vm, device, host, kind, severity, count(*) AS records, sum(count) AS signals,
                       min(time_us) AS first, max(time_us) AS last
                FROM history \(filter.sql)
                GROUP BY vm, device, host, kind, severity ORDER BY vm, device, min(seq)
                """, arguments: filter.arguments)
            return try rows.map { row throws(StateStoreError) in
                let columns = ColumnReader(row: row, table: HistoryColumns.table)
                return HistorySummaryRow(
                    vm: try columns.string("vm"), device: try columns.string("device"), host: try columns.string("host"),
                    kind: try columns.enumeration(HistoryRecord.Kind.self, "kind"),
                    severity: try columns.optionalEnumeration(Severity.self, "severity"),
                    records: Int(clamping: try columns.int64("records")), signals: Int(clamping: try columns.int64("signals")),
                    firstMicroseconds: try columns.int64("first"), lastMicroseconds: try columns.int64("last"))
            }
        }
    }

    /// Deletes what `retention` no longer keeps; returns how many rows went.
    @discardableResult
    public func pruneHistory(_ retention: HistoryRetention,
                             now: Int64 = WallClock.microsecondsSinceEpoch()) throws(StateStoreError) -> Int {
        try write { db in
            try db.execute(sql: "DELETE FROM history WHERE time_us < ?", arguments: [now - retention.maxAgeMicroseconds])
            var deleted = db.changesCount
            try db.execute(sql: """
                DELETE FROM history WHERE seq <= (SELECT seq FROM history ORDER BY seq DESC LIMIT 1 OFFSET ?)
                """, arguments: [retention.maxRows])
            deleted += db.changesCount
            return deleted
        }
    }
}
