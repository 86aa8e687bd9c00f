@testable import QMPWire
import Testing

/// Strings in QEMU's dialect: both quote styles, all escapes, modified UTF-8.
struct QMPInputStringTests {
    /// The one string a message consists of, decoded.
    func string(_ input: [UInt8]) -> String? {
        var reader = QMPInputReader()
        var result: String?
        reader.feed(input) { if case .value(let json) = $0 { result = json.string } }
        return result
    }

    func string(_ input: String) -> String? { string(Array(input.utf8)) }

    @Test func bracesAndQuotesInsideStringsDoNotEndTheMessage() {
        #expect(readAll(#"{"s": "{[}]\"'", 't': '}"]\''}"#) == [.value(#"{"s":"{[}]\"'","t":"}\"]'"}"#)])
    }

    @Test func singleQuotedMessagesAreAccepted() {
        #expect(readAll(#"{'execute':'query-status','id':'it\'s "q"'}"#) == [
            .value(#"{"execute":"query-status","id":"it's \"q\""}"#),
        ])
    }

    @Test func everyEscape() {
        #expect(string(#""\b\f\n\r\t\/\\\"\'""#) == "\u{8}\u{C}\n\r\t/\\\"'")
        #expect(string(#"'\"\''"#) == "\"'")
    }

    @Test func unicodeEscapesIncludingSurrogatePairs() {
        #expect(string(#""\u00e9\u00C9\u20AC""#) == "éÉ€")
        #expect(string(#""\uD83D\uDE00""#) == "😀")
    }

    @Test func rawUTF8PassesThrough() {
        #expect(string("\"é€😀\"") == "é€😀")
    }

    /// QEMU holds U+0000 as modified UTF-8 `C0 80` and writes it back as `\u0000`.
    @Test func nulFromEscapeOrModifiedUTF8() {
        #expect(string(#""a\u0000b""#) == "a\u{0}b")
        #expect(string([0x22, 0x61, 0xC0, 0x80, 0x62, 0x22]) == "a\u{0}b")
        #expect(readAll(#""a\u0000b""#) == [.value(#""a\u0000b""#)])
    }

    @Test func keysAreDecodedLikeValues() {
        #expect(readAll(#"{"\u0041": 1, 'b\'': 2}"#) == [.value(#"{"A":1,"b'":2}"#)])
        #expect(readAll(#"{"A": 1, "\u0041": 2}"#) == [jsonParseError("duplicate key")])
    }

    @Test func emptyStringsAndKeys() {
        #expect(readAll(#"{"": ''}"#) == [.value(#"{"":""}"#)])
    }
}
