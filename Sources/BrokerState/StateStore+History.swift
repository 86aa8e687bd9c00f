import ErrorEvents
import GRDB

extension StateStore {
    /// Writes one history line now. With `counters` (an error's record), the device's
    /// counters are stored in the same transaction, so history and counters never disagree
    /// on disk; a device removed meanwhile keeps its history and has no counters to update.
    /// The broker's event path uses `recordHistoryLater`.
    package func recordHistory(_ record: HistoryRecord, counters: DeviceErrorCounters? = nil) throws(StateStoreError) {
        let arguments = try HistoryColumns.arguments(record)
        var counterArguments = counters.map(DeviceColumns.counterArguments)
        counterArguments? += ["vm": record.vm, "id": record.device]
        try write { db in
            try db.cachedStatement(sql: HistoryColumns.insert).execute(arguments: arguments)
            if let counterArguments {
                try db.cachedStatement(sql: DeviceColumns.updateCounters).execute(arguments: counterArguments)
            }
        }
    }

    /// The newest `query.limit` matching records, oldest first (as a log reads).
    package func historyRecords(_ query: HistoryQuery) throws(StateStoreError) -> [HistoryRecord] {
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
    package func historySummary(_ query: HistoryQuery) throws(StateStoreError) -> [HistorySummaryRow] {
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
    package func pruneHistory(_ retention: HistoryRetention,
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
