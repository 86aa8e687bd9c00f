@testable import QMPWire
import Testing

/// After garbage the reader reports it and resynchronises like QEMU's IN_RECOVERY
/// state, so the next good command works. Outputs checked against QEMU 7.2.
struct QMPInputRecoveryTests {
    static let good = #"{"execute":"query-status"}"#

    @Test func garbageBetweenCommands() {
        #expect(readAll("abc!def " + Self.good) == [
            jsonParseError("invalid keyword 'abc'"), jsonParseError("stray '!'"), .value(Self.good),
        ])
    }

    @Test func garbageInsideACommandDropsIt() {
        // The `}` left over after recovery is a message of its own.
        #expect(readAll(#"{"execute": "query-status" ! } "# + Self.good) == [
            jsonParseError("stray '!'"), jsonParseError("expecting value"), .value(Self.good),
        ])
    }

    @Test func controlCharactersAndFFForceAResync() {
        // qmp-spec: a client may send 0xFF (or a control character) to reset the parser.
        let input = Array(#"{"execute": "#.utf8) + [0xFF] + Array(Self.good.utf8)
        #expect(readAll(input) == [jsonParseError("stray '\u{FFFD}'"), .value(Self.good)])
        #expect(readAll("!!\u{01}" + Self.good) == [jsonParseError("stray '!'"), jsonParseError("stray '\u{01}'"), .value(Self.good)])
    }

    @Test func newlineInsideAStringEndsTheGarbage() {
        #expect(readAll("{\"execute\": \"query-\nstatus\"}\n" + Self.good) == [
            jsonParseError("stray '\"query-\n'"), jsonParseError("expecting value"), .value(Self.good),
        ])
    }

    @Test func badValueInsideACommandOnlyCostsThatCommand() {
        #expect(readAll(#"{"execute":"x","arguments":{"a":nope}}"# + Self.good) == [
            jsonParseError("invalid keyword 'nope'"), .value(Self.good),
        ])
    }
}
