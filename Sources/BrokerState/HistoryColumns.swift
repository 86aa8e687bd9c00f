import ErrorEvents
import Foundation
import GRDB

/// The `error_history` table's SQL and row mapping.
enum HistoryColumns {
    static let table = "error_history"

    static let insert = """
        INSERT INTO error_history (
            vm, device, host, time_us, severity, errors, count, source, action, link_error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    private static let selectColumns =
        "vm, device, host, time_us, severity, errors, count, source, action, link_error"

    // Newest first, by emission order (seq), which a wall-clock step cannot disturb.
    static let selectVM = """
        SELECT \(selectColumns) FROM error_history WHERE vm = ? ORDER BY seq DESC LIMIT ?
        """
    static let selectDevice = """
        SELECT \(selectColumns) FROM error_history WHERE vm = ? AND device = ?
        ORDER BY seq DESC LIMIT ?
        """

    static func arguments(_ entry: ErrorHistoryEntry) throws(StateStoreError) -> StatementArguments {
        [
            entry.vm, entry.device, entry.host, entry.microsecondsSinceEpoch,
            entry.severity.rawValue, try encodeNames(entry.errors), entry.count,
            entry.source.rawValue, entry.action.rawValue, entry.linkError,
        ]
    }

    static func decode(_ row: Row) throws(StateStoreError) -> ErrorHistoryEntry {
        let columns = ColumnReader(row: row, table: table)
        return ErrorHistoryEntry(
            vm: try columns.string("vm"),
            device: try columns.string("device"),
            host: try columns.string("host"),
            microsecondsSinceEpoch: try columns.int64("time_us"),
            severity: try columns.enumeration(Severity.self, "severity"),
            errors: try decodeNames(try columns.string("errors")),
            count: Int(clamping: try columns.int64("count")),
            source: try columns.enumeration(ErrorSource.self, "source"),
            action: try columns.enumeration(PCIErrorEvent.Action.self, "action"),
            linkError: try columns.bool("link_error"))
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
