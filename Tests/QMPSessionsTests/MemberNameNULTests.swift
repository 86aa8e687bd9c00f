@testable import QMPSessions
@testable import QMPWire
import Testing

/// A member name holding U+0000, as `\u0000` or as modified UTF-8's overlong `C0 80`.
/// QEMU keeps the whole name (it stores U+0000 as `C0 80` in a C string) and its JSON
/// writer shows it as `\u0000`: the replies below are QEMU 7.2.22's, captured from the binary.
@Suite struct MemberNameNULTests {
    /// The first reply the reader and a negotiated session give for `input`.
    func reply(_ input: [UInt8]) -> String {
        var session = ClientSession(oobOffered: false, localCommands: [])
        _ = session.received(.object(["execute": .string("qmp_capabilities")]))
        var replies: [String] = []
        var reader = QMPInputReader()
        reader.feed(input) { read in
            let action = switch read {
            case .value(let value): session.received(value)
            case .error(let desc): session.parseError(desc)
            }
            switch action {
            case .reply(let json): replies.append(json.description)
            case .forward(let request): replies.append("forward \(request.message.description)")
            case .handleLocally(let request): replies.append("local \(request.command)")
            }
        }
        return replies.first ?? "nothing"
    }

    @Test func escapedNULInAnEnvelopeMember() {
        #expect(reply(Array(#"{"execute":"query-status","a\u0000b":1}"#.utf8))
            == #"{"error": {"class": "GenericError", "desc": "QMP input member 'a\u0000b' is unexpected"}}"#)
        #expect(reply(Array(#"{"a\u0000b":1}"#.utf8))
            == #"{"error": {"class": "GenericError", "desc": "QMP input member 'a\u0000b' is unexpected"}}"#)
    }

    @Test func overlongNULInAnEnvelopeMember() {
        #expect(reply(Array(#"{"execute":"query-status",""#.utf8) + [0xC0, 0x80] + Array(#"":1}"#.utf8))
            == #"{"error": {"class": "GenericError", "desc": "QMP input member '\u0000' is unexpected"}}"#)
    }

    /// Forwarded to the VMM with the whole name, so QEMU itself names it in its error.
    @Test func argumentNamesKeepTheirNUL() {
        #expect(reply(Array(#"{"execute":"query-status","arguments":{"a\u0000b":1}}"#.utf8))
            == #"forward {"execute": "query-status", "arguments": {"a\u0000b": 1}}"#)
    }

    @Test func namesWithNULAreWholeKeys() {
        let json = JSON.object()
        json["a\u{0}b"] = .integer(1)
        #expect(json["a\u{0}b"]?.integer == 1)
        #expect(json["a"] == nil)
        #expect(json.keys == ["a\u{0}b"])
    }
}
