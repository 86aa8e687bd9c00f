import Testing
@testable import QMPBroker

/// After garbage the reader reports it and resynchronises like QEMU's IN_RECOVERY
/// state, so the next good command works. Outputs checked against QEMU 7.2.
struct QMPInputRecoveryTests {
    static let good = #"{"execute":"query-status"}"#

    @Test func garbageBetweenCommands() {
        #expect(read("abc!def " + Self.good) == [
            parseError("invalid keyword 'abc'"), parseError("stray '!'"), .value(Self.good),
        ])
    }

    @Test func garbageInsideACommandDropsIt() {
        // The `}` left over after recovery is a message of its own.
        #expect(read(#"{"execute": "query-status" ! } "# + Self.good) == [
            parseError("stray '!'"), parseError("expecting value"), .value(Self.good),
        ])
    }

    @Test func controlCharactersAndFFForceAResync() {
        // qmp-spec: a client may send 0xFF (or a control character) to reset the parser.
        let input = Array(#"{"execute": "#.utf8) + [0xFF] + Array(Self.good.utf8)
        #expect(read(input) == [parseError("stray '\u{FFFD}'"), .value(Self.good)])
        #expect(read("!!\u{01}" + Self.good) == [parseError("stray '!'"), parseError("stray '\u{01}'"), .value(Self.good)])
    }

    @Test func newlineInsideAStringEndsTheGarbage() {
        #expect(read("{\"execute\": \"query-\nstatus\"}\n" + Self.good) == [
            parseError("stray '\"query-\n'"), parseError("expecting value"), .value(Self.good),
        ])
    }

    @Test func badValueInsideACommandOnlyCostsThatCommand() {
        #expect(read(#"{"execute":"x","arguments":{"a":nope}}"# + Self.good) == [
            parseError("invalid keyword 'nope'"), .value(Self.good),
        ])
    }
}
