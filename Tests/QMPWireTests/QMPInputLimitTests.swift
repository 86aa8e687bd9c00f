@testable import QMPWire
import Testing

/// QEMU's security limits and what follows them: the message so far is dropped and
/// the rest of the input is read as new messages. Real-limit outputs checked against QEMU 7.2.
struct QMPInputLimitTests {
    static func limits(size: Int = 1 << 20, count: Int = 1 << 20, nesting: Int = 1 << 10) -> QMPInputLimits {
        QMPInputLimits(maxTokenSize: size, maxTokenCount: count, maxNesting: nesting)
    }

    @Test func nestingWithinTheLimit() {
        #expect(readAll("[[[]]]", limits: Self.limits(nesting: 3)) == [.value("[[[]]]")])
        #expect(readAll(#"{"a":[{"b":[]}]}"#, limits: Self.limits(nesting: 4)) == [.value(#"{"a":[{"b":[]}]}"#)])
    }

    @Test func nestingPastTheLimit() {
        // Every closer left over is an "expecting value" of its own, as in QEMU.
        #expect(readAll(#"{"a":[[{}]]}"#, limits: Self.limits(nesting: 3)) == [
            .error("JSON nesting depth limit exceeded"),
            jsonParseError("expecting value"), jsonParseError("expecting value"), jsonParseError("expecting value"),
            jsonParseError("expecting value"),
        ])
    }

    @Test func qemusNestingLimitIs1024() {
        let deepest = String(repeating: "[", count: 1024) + String(repeating: "]", count: 1024)
        #expect(readAll(deepest) == [.value(deepest)])
        let deepestMixed = String(repeating: #"{"a":["#, count: 512) + String(repeating: "]}", count: 512)
        #expect(readAll(deepestMixed) == [.value(deepestMixed)])
        let tooDeep = String(repeating: "[", count: 1025) + String(repeating: "]", count: 1025)
        #expect(readAll(tooDeep) == [.error("JSON nesting depth limit exceeded")]
            + Array(repeating: jsonParseError("expecting value"), count: 1025))
        let mixed = String(repeating: #"{"a":"#, count: 512) + String(repeating: "[", count: 513)
            + String(repeating: "]", count: 513) + String(repeating: "}", count: 512)
        #expect(readAll(mixed) == [.error("JSON nesting depth limit exceeded")]
            + Array(repeating: jsonParseError("expecting value"), count: 1025))
    }

    /// The message's bytes plus one (QEMU's NUL) must not pass the limit.
    @Test func messageSizeBoundary() {
        let limits = Self.limits(size: 16)
        let fits = "[\"" + String(repeating: "a", count: 11) + "\"]"  // 1 + 13 + 1 bytes
        #expect(readAll(fits, limits: limits) == [.value(fits)])
        let over = "[\"" + String(repeating: "a", count: 12) + "\"]"
        #expect(readAll(over, limits: limits) == [.error("JSON token size limit exceeded")])
    }

    @Test func sizeCountsAllTokensOfAMessage() {
        // `[` + `"aaaaa"` + `,` is 9 bytes; `"bbbbb"` would make 16, plus one: too big.
        #expect(readAll(#"["aaaaa","bbbbb","c"] 7 "#, limits: Self.limits(size: 16)) == [
            .error("JSON token size limit exceeded"),
            jsonParseError("expecting value"), .value(#""c""#), jsonParseError("expecting value"), .value("7"),
        ])
    }

    /// A token past the limit is cut off; the lexer starts afresh on the bytes after it.
    @Test func oversizedTokenIsCutAndTheRestIsReadAnew() {
        let input = "[\"" + String(repeating: "a", count: 16) + "\"]\""
        let expected: [ReaderOutput] = [.error("JSON token size limit exceeded"), .value(#""]""#)]
        #expect(readAll(input, limits: Self.limits(size: 16)) == expected)
        #expect(readAll(input, cuts: Array(1..<input.utf8.count), limits: Self.limits(size: 16)) == expected)
    }

    @Test func tokenCount() {
        let limits = Self.limits(count: 5)
        #expect(readAll("[1,2]", limits: limits) == [.value("[1,2]")])
        #expect(readAll("[1,2,3] [] ", limits: limits) == [
            .error("JSON token count limit exceeded"), jsonParseError("expecting value"), .value("[]"),
        ])
    }
}
