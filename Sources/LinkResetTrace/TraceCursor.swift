/// Walks the blank-separated tokens of one trace line from either end. Line ends (`\r`,
/// `\n`) and surrounding blanks are not part of any token.
struct TraceCursor {
    /// What has not been taken yet, blanks trimmed at both ends.
    private(set) var rest: TraceBytes

    init(_ bytes: TraceBytes) { rest = bytes.trimmed() }

    mutating func nextToken() -> TraceBytes? {
        guard !rest.isEmpty else { return nil }
        let end = rest.firstBlank() ?? rest.end
        let token = rest.prefix(upTo: end)
        rest = rest.suffix(from: end).trimmed()
        return token
    }

    mutating func previousToken() -> TraceBytes? {
        guard !rest.isEmpty else { return nil }
        let start = (rest.lastBlank() ?? (rest.start - 1)) + 1
        let token = rest.suffix(from: start)
        rest = rest.prefix(upTo: start).trimmed()
        return token
    }
}
