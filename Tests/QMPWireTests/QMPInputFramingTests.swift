@testable import QMPWire
import Testing

/// Messages need no separator, may share a read, and may be cut anywhere.
struct QMPInputFramingTests {
    static let status = #"{"execute":"query-status"}"#

    @Test func severalMessagesInOneChunkWithoutNewlines() {
        let input = Self.status + " " + Self.status + Self.status + "\r\n" + #"{"execute":"cont","id":7}"#
        #expect(readAll(input) == [
            .value(Self.status), .value(Self.status), .value(Self.status), .value(#"{"execute":"cont","id":7}"#),
        ])
    }

    @Test(arguments: [
        #"{"execute":"qmp_capabilities"}{"execute":"query-status","id":"a}b"}"#,
        #"{"execute": "x", "arguments": {"s": "[{\"}]\\", "n": [1, -2.5e3, true, null]}} [] 'q'"#,
        "{\"a\": 1}\u{01}junk {\"b\": [}]} {'c': 'd'}",
    ])
    func everySplitPointGivesTheSameOutput(input: String) {
        let whole = readAll(input)
        #expect(!whole.isEmpty)
        for cut in 0...input.utf8.count {
            #expect(readAll(input, cuts: [cut]) == whole, "cut at \(cut)")
        }
        #expect(readAll(input, cuts: Array(1..<input.utf8.count)) == whole, "byte by byte")
    }

    @Test func oneMessageByteByByte() {
        let input = #"{"execute":"human-monitor-command","arguments":{"command-line":"info \"x\""}}"#
        let cuts = Array(1..<input.utf8.count)
        #expect(readAll(input, cuts: cuts) == [.value(input)])
    }

    @Test func aScalarWaitsForTheByteThatEndsIt() {
        // Numbers and keywords end only when the next byte arrives (QEMU's lookahead).
        var reader = QMPInputReader()
        var reads: [ReaderOutput] = []
        reader.feed(Array("12".utf8)) { reads.append(ReaderOutput($0)) }
        reader.feed(Array("3 tru".utf8)) { reads.append(ReaderOutput($0)) }
        #expect(reads == [.value("123")])
        reader.feed(Array("e\n".utf8)) { reads.append(ReaderOutput($0)) }
        #expect(reads == [.value("123"), .value("true")])
    }

    @Test func topLevelScalarsAreMessagesOfTheirOwn() {
        #expect(readAll(#"1 2 [3] "s" true null "#) == [
            .value("1"), .value("2"), .value("[3]"), .value(#""s""#), .value("true"), .value("null"),
        ])
    }

    @Test func objectsKeepTheirMemberOrder() {
        #expect(readAll(#"{"z": 1, "a": 2, "m": {"y": [], "b": {}}}"#) == [
            .value(#"{"z":1,"a":2,"m":{"y":[],"b":{}}}"#),
        ])
    }
}
