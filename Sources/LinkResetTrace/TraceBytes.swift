import Glibc

/// Part of one trace line's bytes: a pointer and a half-open index range into it.
///
/// A concrete type rather than `Slice<UnsafeBufferPointer<UInt8>>` so every operation the
/// parser does is a plain loop or `memchr`/`memcmp`, fast in debug builds too (generic
/// slice calls are not specialized there, which made parsing ~100x slower).
struct TraceBytes {
    let base: UnsafePointer<UInt8>
    private(set) var start: Int
    private(set) var end: Int

    init(base: UnsafePointer<UInt8>, start: Int, end: Int) {
        self.base = base
        self.start = start
        self.end = end
    }

    var count: Int { end - start }
    var isEmpty: Bool { start >= end }
    var first: UInt8? { isEmpty ? nil : base[start] }
    var last: UInt8? { isEmpty ? nil : base[end - 1] }

    subscript(index: Int) -> UInt8 { base[index] }

    /// The bytes from `lower` up to (not including) `upper`, both absolute indices.
    func slice(_ lower: Int, _ upper: Int) -> TraceBytes { TraceBytes(base: base, start: lower, end: upper) }
    func prefix(upTo index: Int) -> TraceBytes { slice(start, index) }
    func suffix(from index: Int) -> TraceBytes { slice(index, end) }
    func dropFirst(_ count: Int = 1) -> TraceBytes { slice(min(start + count, end), end) }
    func dropLast(_ count: Int = 1) -> TraceBytes { slice(start, max(end - count, start)) }

    func firstIndex(of byte: UInt8) -> Int? {
        guard !isEmpty, let found = memchr(base + start, Int32(byte), count) else { return nil }
        return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
    }

    func lastIndex(of byte: UInt8) -> Int? {
        var index = end - 1
        while index >= start {
            if base[index] == byte { return index }
            index -= 1
        }
        return nil
    }

    func firstBlank() -> Int? {
        var index = start
        while index < end {
            if Self.isBlank(base[index]) { return index }
            index += 1
        }
        return nil
    }

    func lastBlank() -> Int? {
        var index = end - 1
        while index >= start {
            if Self.isBlank(base[index]) { return index }
            index -= 1
        }
        return nil
    }

    /// Without blanks (and line ends) at either end.
    func trimmed() -> TraceBytes {
        var lower = start
        var upper = end
        while lower < upper, Self.isBlank(base[lower]) { lower += 1 }
        while upper > lower, Self.isBlank(base[upper - 1]) { upper -= 1 }
        return slice(lower, upper)
    }

    func equals(_ literal: StaticString) -> Bool {
        count == literal.utf8CodeUnitCount && memcmp(base + start, literal.utf8Start, count) == 0
    }

    var string: String { String(decoding: UnsafeBufferPointer(start: base + start, count: count), as: UTF8.self) }

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
