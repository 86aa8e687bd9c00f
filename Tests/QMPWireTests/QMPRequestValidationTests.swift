@testable import QMPWire
import Testing

/// Envelope checks with QEMU 7.2's exact texts (captured from the real binary).
@Suite struct QMPRequestValidationTests {
    func rejection(_ text: String, allowOOB: Bool = false) throws -> String {
        switch QMPRequest.validate(try JSON.parse(text), allowOOB: allowOOB) {
        case .request: return "accepted"
        case .rejected(let reply): return reply.description
        }
    }

    @Test func nonObjectInput() throws {
        #expect(try rejection("[1]") == #"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#)
        #expect(try rejection("5") == #"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#)
    }

    @Test func missingExecuteEchoesID() throws {
        #expect(try rejection(#"{"id":5}"#) == #"{"id": 5, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}"#)
    }

    @Test func executeMustBeAString() throws {
        #expect(try rejection(#"{"execute":5,"id":"x"}"#)
            == #"{"id": "x", "error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}}"#)
    }

    @Test func execOOBIsUnexpectedUnlessNegotiated() throws {
        #expect(try rejection(#"{"exec-oob":"query-status","id":1}"#)
            == #"{"id": 1, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}"#)
        #expect(try rejection(#"{"exec-oob":"query-status","id":1}"#, allowOOB: true) == "accepted")
    }

    @Test func executeAndExecOOBClash() throws {
        let text = try rejection(#"{"execute":"a","exec-oob":"b"}"#, allowOOB: true)
        #expect(text.contains("clashes with"))
    }

    @Test func argumentsMustBeAnObject() throws {
        #expect(try rejection(#"{"execute":"qmp_capabilities","arguments":5}"#)
            == #"{"error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}}"#)
    }

    @Test func unknownMemberFoundInQDictOrder() throws {
        #expect(try rejection(#"{"arguments":{},"execute":"qmp_capabilities","id":"a","foo":2}"#)
            == #"{"id": "a", "error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}"#)
    }

    @Test func validRequestKeepsEverything() throws {
        guard case .request(let request) = QMPRequest.validate(
            try JSON.parse(#"{"execute":"stop","id":[1,{"a":null}],"arguments":{"x":1}}"#), allowOOB: false)
        else { Issue.record("rejected"); return }
        #expect(request.command == "stop")
        #expect(!request.isOOB)
        #expect(request.id == (try JSON.parse(#"[1,{"a":null}]"#)))
        #expect(request.arguments?["x"]?.integer == 1)
    }
}
