/// How a `UInt64` error count is stored. SQLite's INTEGER is signed; a count that reaches
/// 2^63 is saturated in practice, so it clamps there and reads back as the domain's own
/// saturation value, `UInt64.max`. Any SQLite tool then reads the column as it is.
enum StoredCount {
    static func encode(_ count: UInt64) -> Int64 {
        Int64(clamping: count)
    }

    /// nil for a negative value, which no broker writes.
    static func decode(_ stored: Int64) -> UInt64? {
        guard stored >= 0 else { return nil }
        return stored == .max ? .max : UInt64(stored)
    }
}
