/// Why the state store could not do what was asked. Every package `StateStore` method throws
/// only this, so callers (and their logs) never need to know about SQLite or GRDB.
public enum StateStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file exists but is not an SQLite database, or its pages are damaged.
    case notADatabase(path: String, detail: String)
    /// The file or its directory could not be created or opened.
    case cannotOpen(path: String, detail: String)
    /// An SQLite database, but not one this broker may use: another program's file, or one
    /// written by a newer broker whose migrations this one does not know. Opening it anyway
    /// could read a flag from the wrong place and lose it, so the store refuses.
    case incompatibleSchema(path: String, detail: String)
    /// `saveState` (or counters) for a device that was never `save`d.
    case unknownDevice(vm: String, id: String)
    /// A stored value this version cannot read (a hand-edited file, or a newer broker's value).
    case invalidValue(table: String, column: String, detail: String)
    /// Any other SQLite failure: disk full, I/O error, lock held too long by another process.
    case database(path: String, detail: String)

    public var description: String {
        switch self {
        case .notADatabase(let path, let detail):
            "state file \(path) is not a usable SQLite database (\(detail)); move it aside to start with empty state"
        case .cannotOpen(let path, let detail):
            "cannot open state file \(path): \(detail)"
        case .incompatibleSchema(let path, let detail):
            "state file \(path) is not this broker's: \(detail)"
        case .unknownDevice(let vm, let id):
            "no stored device '\(id)' for VM '\(vm)'"
        case .invalidValue(let table, let column, let detail):
            "unreadable value in \(table).\(column): \(detail)"
        case .database(let path, let detail):
            "state file \(path): \(detail)"
        }
    }
}
