import QMPWire
import Testing

/// Forwarding splices the broker's id into the client's own bytes: the members after
/// `{` without the top-level `id`, whitespace dropped, everything else as written.
@Suite struct MembersWithoutIDTests {
    func members(_ text: String) -> String? {
        var reader = QMPInputReader()
        var result: String??
        Array((text + " ").utf8).withUnsafeBytes { bytes in
            reader.feed(bytes) { (_: QMPInput, tokens: QMPMessageTokens?) in
                result = tokens?.membersWithoutID().map { String(decoding: $0, as: UTF8.self) }
            }
        }
        return result ?? nil
    }

    @Test(arguments: [
        (#"{"execute": "query-status", "id": 5}"#, #""execute":"query-status"}"#),
        (#"{"id": {"a": [1, "x"]}, "execute": "stop"}"#, #""execute":"stop"}"#),
        (#"{"execute": "x", "id": "i", "arguments": {"id": 1}}"#, #""execute":"x","arguments":{"id":1}}"#),
        (#"{"execute": "query-status"}"#, #""execute":"query-status"}"#),
        (#"{'execute': 'x', 'id': 'y'}"#, #"'execute':'x'}"#),
        (#"{"execute": "echo", "arguments": {"s": "a\u00e9\"b"}, "id": null}"#, #""execute":"echo","arguments":{"s":"a\u00e9\"b"}}"#),
    ])
    func spliceable(_ input: String, _ expected: String) {
        #expect(members(input) == expected)
    }

    @Test(arguments: [#"{"\u0069d": 1, "execute": "x"}"#, #"{"id": 1}"#, "[1, 2]", "7"])
    func notSpliceable(_ input: String) {
        #expect(members(input) == nil)
    }
}
