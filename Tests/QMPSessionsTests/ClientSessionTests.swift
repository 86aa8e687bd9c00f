@testable import QMPSessions
@testable import QMPWire
import Testing

/// The negotiation state machine as a transcript: input → what the broker does.
@Suite struct ClientSessionTests {
    func reply(_ action: ClientSession.Action) -> String? {
        if case .reply(let json) = action { return json.description }
        return nil
    }

    func feed(_ session: inout ClientSession, _ text: String) throws -> ClientSession.Action {
        session.received(try JSON.parse(text))
    }

    @Test func commandBeforeNegotiationIsRefusedLikeQEMU() throws {
        var session = ClientSession(oobOffered: true, localCommands: [])
        #expect(try reply(feed(&session, #"{"execute":"query-status","id":{"a":[1,2]}}"#))
            == #"{"id": {"a": [1, 2]}, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}"#)
        #expect(!session.receivesEvents)
    }

    @Test func negotiationThenForwarding() throws {
        var session = ClientSession(oobOffered: true, localCommands: ["query-broker"])
        #expect(try reply(feed(&session, #"{"execute":"qmp_capabilities","id":2}"#)) == #"{"return": {}, "id": 2}"#)
        #expect(session.receivesEvents)
        #expect(!session.oobEnabled)
        guard case .forward(let request) = try feed(&session, #"{"execute":"query-status","id":"q"}"#) else {
            Issue.record("not forwarded"); return
        }
        #expect(request.command == "query-status")
        guard case .handleLocally = try feed(&session, #"{"execute":"query-broker"}"#) else {
            Issue.record("not local"); return
        }
    }

    @Test func secondNegotiationIsRefused() throws {
        var session = ClientSession(oobOffered: false, localCommands: [])
        _ = try feed(&session, #"{"execute":"qmp_capabilities"}"#)
        #expect(try reply(feed(&session, #"{"execute":"qmp_capabilities","id":2}"#))
            == #"{"id": 2, "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}"#)
    }

    @Test func oobOnlyWhenOfferedAndEnabled() throws {
        var withoutOffer = ClientSession(oobOffered: false, localCommands: [])
        #expect(try reply(feed(&withoutOffer, #"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#))
            == #"{"error": {"class": "GenericError", "desc": "Capability oob not available"}}"#)
        var offered = ClientSession(oobOffered: true, localCommands: [])
        _ = try feed(&offered, #"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#)
        #expect(offered.oobEnabled)
        guard case .forward(let request) = try feed(&offered, #"{"exec-oob":"migrate-pause","id":1}"#) else {
            Issue.record("not forwarded"); return
        }
        #expect(request.isOOB)
    }

    @Test func capabilityArgumentErrorsMatchQEMU() throws {
        let cases: [(String, String)] = [
            (#"{"enable":"oob"}"#, "Invalid parameter type for 'enable', expected: array"),
            (#"{"enable":null}"#, "Invalid parameter type for 'enable', expected: array"),
            (#"{"enable":[5]}"#, "Invalid parameter type for 'enable[0]', expected: string"),
            (#"{"enable":["foo"]}"#, "Parameter 'null' does not accept value 'foo'"),
            (#"{"foo":1}"#, "Parameter 'foo' is unexpected"),
            (#"{"foo":1,"enable":5}"#, "Invalid parameter type for 'enable', expected: array"),
        ]
        for (arguments, desc) in cases {
            var session = ClientSession(oobOffered: true, localCommands: [])
            let text = try reply(feed(&session, #"{"execute":"qmp_capabilities","arguments":"# + arguments + "}"))
            #expect(text == #"{"error": {"class": "GenericError", "desc": ""# + desc + #""}}"#, "\(arguments)")
            #expect(!session.receivesEvents)
        }
    }

    @Test func parseErrorsAnswerWithoutID() {
        let session = ClientSession(oobOffered: false, localCommands: [])
        #expect(reply(session.parseError("JSON parse error, invalid keyword 'foo'"))
            == #"{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'foo'"}}"#)
    }

    @Test func readOnlyClientsMayOnlyQuery() throws {
        var session = ClientSession(oobOffered: false, localCommands: [], readOnly: true)
        _ = try feed(&session, #"{"execute":"qmp_capabilities"}"#)
        guard case .forward = try feed(&session, #"{"execute":"query-status"}"#) else { Issue.record("refused"); return }
        #expect(try reply(feed(&session, #"{"execute":"stop","id":1}"#))?.contains("read-only") == true)
    }
}
