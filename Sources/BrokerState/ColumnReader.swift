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

    func optionalString(_ column: String) throws(StateStoreError) -> String? {
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

    func optionalBool(_ column: String) throws(StateStoreError) -> Bool? {
        try value(column)
    }

    func optionalEnumeration<T: RawRepresentable>(_ type: T.Type, _ column: String) throws(StateStoreError) -> T?
    where T.RawValue == String {
        guard try optionalString(column) != nil else { return nil }
        return try enumeration(type, column)
    }

    func count(_ column: String) throws(StateStoreError) -> UInt64 {
        let stored = try int64(column)
        guard let count = StoredCount.decode(stored) else {
            throw .invalidValue(table: table, column: column, detail: "negative count \(stored)")
        }
        return count
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
