import ErrorEvents
import Foundation
import GRDB

/// The `history` table's SQL and row mapping.
enum HistoryColumns {
    static let table = "history"

    static let insert = """
        INSERT INTO history (
            time_us, vm, device, host, kind, severity, errors, count, source, action, link_error, cause)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    static let columns =
        "seq, time_us, vm, device, host, kind, severity, errors, count, source, action, link_error, cause"

    /// The WHERE clause and its arguments for a query; seq orders (a wall-clock step cannot disturb it).
    static func filter(_ query: HistoryQuery) -> (sql: String, arguments: StatementArguments) {
        var clauses: [String] = []
        var arguments = StatementArguments()
        if let vm = query.vm {
            clauses.append("vm = ?")
            arguments += [vm]
        }
        if let device = query.device {
            clauses.append("device = ?")
            arguments += [device]
        }
        if let since = query.sinceMicroseconds {
            clauses.append("time_us >= ?")
            arguments += [since]
        }
        if !query.kinds.isEmpty {
            clauses.append("kind IN (\(query.kinds.map { _ in "?" }.joined(separator: ", ")))")
            for kind in query.kinds { arguments += [kind.rawValue] }
        }
        return (clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND "), arguments)
    }

    static func arguments(_ record: HistoryRecord) throws(StateStoreError) -> StatementArguments {
        [
            record.microsecondsSinceEpoch, record.vm, record.device, record.host, record.kind.rawValue,
            record.severity?.rawValue, try encodeNames(record.errors), record.count, record.source, record.action,
            record.linkError, record.cause,
        ]
    }

    static func decode(_ row: Row) throws(StateStoreError) -> HistoryRecord {
        let columns = ColumnReader(row: row, table: table)
        var record = HistoryRecord(
            vm: try columns.string("vm"), device: try columns.string("device"), host: try columns.string("host"),
            kind: try columns.enumeration(HistoryRecord.Kind.self, "kind"),
            severity: try columns.optionalEnumeration(Severity.self, "severity"),
            errors: try decodeNames(try columns.string("errors")),
            count: Int(clamping: try columns.int64("count")),
            source: try columns.optionalString("source"), action: try columns.optionalString("action"),
            linkError: try columns.optionalBool("link_error"), cause: try columns.optionalString("cause"),
            microsecondsSinceEpoch: try columns.int64("time_us"))
        record.sequence = try columns.int64("seq")
        return record
    }

    // A JSON array rather than a joined string: names are the host's and must come back
    // exactly, and `json_each(errors)` lets an operator query them with plain sqlite3.
    private static func encodeNames(_ names: [String]) throws(StateStoreError) -> String {
        do {
            return String(decoding: try JSONEncoder().encode(names), as: UTF8.self)
        } catch {
            throw .invalidValue(table: table, column: "errors", detail: "\(error)")
        }
    }

    private static func decodeNames(_ json: String) throws(StateStoreError) -> [String] {
        do {
            return try JSONDecoder().decode([String].self, from: Data(json.utf8))
        } catch {
            throw .invalidValue(table: table, column: "errors", detail: "not a JSON array of names: \(json)")
        }
    }
}
