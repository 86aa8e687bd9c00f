import GRDB

/// Reads one row's columns, turning anything unexpected into `StateStoreError.invalidValue`
/// instead of GRDB's trap on a type mismatch: a hand-edited state file must give a clear
/// error, not take the broker down.
struct ColumnReader {
    let row: Row
    let table: String

    func string(_ column: String) throws(StateStoreError) -> String {
        try value(column)
    }

    func int64(_ column: String) throws(StateStoreError) -> Int64 {
        try value(column)
    }

    func optionalInt64(_ column: String) throws(StateStoreError) -> Int64? {
        try value(column)
    }

    func bool(_ column: String) throws(StateStoreError) -> Bool {
        try value(column)
    }

    /// A non-negative count; the largest INTEGER reads back as "saturated" (`UInt64.max`).
    func count(_ column: String) throws(StateStoreError) -> UInt64 {
        let stored = try int64(column)
        guard stored >= 0 else {
            throw .invalidValue(table: table, column: column, detail: "negative count \(stored)")
        }
        return stored == .max ? .max : UInt64(stored)
    }

    func enumeration<T: RawRepresentable>(_ type: T.Type, _ column: String) throws(StateStoreError) -> T
    where T.RawValue == String {
        let raw = try string(column)
        guard let value = T(rawValue: raw) else {
            throw .invalidValue(table: table, column: column, detail: "unknown value '\(raw)'")
        }
        return value
    }

    private func value<T: DatabaseValueConvertible>(_ column: String) throws(StateStoreError) -> T {
        do {
            return try row.decode(T.self, forColumn: column)
        } catch {
            throw .invalidValue(table: table, column: column, detail: "\(error)")
        }
    }
}

/// How a `UInt64` count is stored: SQLite's INTEGER is signed, and a count that ever
/// reaches 2^63 is already saturated in practice, so it clamps (and reads back as the
/// domain's own saturation value, `UInt64.max`). Any SQLite tool reads the column as is.
enum StoredCount {
    static func encode(_ count: UInt64) -> Int64 {
        Int64(clamping: count)
    }
}
