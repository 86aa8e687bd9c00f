/// Walks the space-separated tokens of one trace line from either end, over the line's
/// bytes in place. Line ends (`\r`, `\n`) and surrounding blanks are not part of any token.
struct TraceCursor {
    /// What has not been taken yet, blanks trimmed at both ends.
    private(set) var rest: Slice<UnsafeBufferPointer<UInt8>>

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.init(bytes[...]) }

    init(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) {
        rest = bytes
        trim()
    }

    mutating func nextToken() -> Slice<UnsafeBufferPointer<UInt8>>? {
        guard !rest.isEmpty else { return nil }
        let end = rest.firstIndex(where: Self.isBlank) ?? rest.endIndex
        let token = rest[..<end]
        rest = rest[end...]
        trim()
        return token
    }

    mutating func previousToken() -> Slice<UnsafeBufferPointer<UInt8>>? {
        guard !rest.isEmpty else { return nil }
        let start = (rest.lastIndex(where: Self.isBlank) ?? (rest.startIndex - 1)) + 1
        let token = rest[start...]
        rest = rest[..<start]
        trim()
        return token
    }

    private mutating func trim() {
        while let first = rest.first, Self.isBlank(first) { rest = rest.dropFirst() }
        while let last = rest.last, Self.isBlank(last) { rest = rest.dropLast() }
    }

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    static func equals(_ token: Slice<UnsafeBufferPointer<UInt8>>, _ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { token.count == $0.count && token.elementsEqual($0) }
    }
}
