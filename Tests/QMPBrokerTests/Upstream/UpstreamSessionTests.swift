import Testing
@testable import QMPBroker

@Suite struct UpstreamSessionTests {
    let greeting = #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#

    func receive(_ session: inout UpstreamSession, _ text: String) throws -> UpstreamSession.Action {
        session.received(try #require(UpstreamLine(ArraySlice(text.utf8))))
    }

    @Test func greetingNegotiationReady() throws {
        var session = UpstreamSession()
        session.connected()
        #expect(try receive(&session, greeting) == .negotiate(oob: true))
        #expect(session.greeting == Array(greeting.utf8))
        #expect(try receive(&session, #"{"return": {}}"#) == .ready)
        #expect(session.isReady)
        #expect(try receive(&session, #"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#) == .deliverEvent)
        #expect(try receive(&session, #"{"return": {}, "id": 4}"#) == .deliverReply)
        #expect(try receive(&session, #"{"error": {"class": "GenericError", "desc": "x"}, "id": 5}"#) == .deliverReply)
    }

    @Test func noOOBWhenNotOffered() throws {
        var session = UpstreamSession()
        session.connected()
        #expect(try receive(&session, #"{"QMP": {"version": {}, "capabilities": []}}"#) == .negotiate(oob: false))
        #expect(!session.oobOffered)
    }

    @Test func somethingElseThanAGreetingIsAViolation() throws {
        var session = UpstreamSession()
        session.connected()
        guard case .protocolViolation = try receive(&session, #"{"hello": 1}"#) else { Issue.record("accepted"); return }
    }

    @Test func strayMessageWhenReadyIsIgnoredNotFatal() throws {
        var session = UpstreamSession()
        session.connected()
        _ = try receive(&session, greeting)
        _ = try receive(&session, #"{"return": {}}"#)
        guard case .ignore = try receive(&session, #"{"what": 1}"#) else { Issue.record("not ignored"); return }
        #expect(session.isReady)
    }

    @Test func backoffGrowsAndIsCapped() {
        var session = UpstreamSession()
        var delays: [Int] = []
        for _ in 0..<8 {
            if case .reconnect(let ms) = session.connectFailed() { delays.append(ms) }
        }
        #expect(delays == [50, 100, 200, 400, 800, 1000, 1000, 1000])
    }

    @Test func lossAfterReadyIsReportedAndRetriedQuickly() throws {
        var session = UpstreamSession()
        session.connected()
        _ = try receive(&session, greeting)
        _ = try receive(&session, #"{"return": {}}"#)
        let (wasReady, action) = session.closed()
        #expect(wasReady)
        #expect(action == .reconnect(afterMilliseconds: 50))
        #expect(session.greeting != nil)  // kept for clients arriving while the VMM is away
    }
}

@Suite struct LineFramerTests {
    @Test func linesSplitAcrossReads() throws {
        var lines: [String] = []
        let text = "{\"a\": 1}\r\n{\"b\": 2}\r\n{\"c\""
        for cut in [3, 12, 20] {
            var framer = LineFramer()
            lines = []
            let bytes = Array(text.utf8)
            for part in [bytes[..<cut], bytes[cut...]] {
                try Array(part).withUnsafeBytes { raw in
                    try framer.feed(raw) { lines.append(String(decoding: $0, as: UTF8.self)) }
                }
            }
            #expect(lines == ["{\"a\": 1}\r\n", "{\"b\": 2}\r\n"])
        }
    }
}

@Suite struct UpstreamLineTests {
    func line(_ text: String) throws -> UpstreamLine { try #require(UpstreamLine(ArraySlice(text.utf8))) }

    @Test func findsTopLevelMembersOnly() throws {
        let reply = try line(#"{"return": {"id": 9, "s": "}\"{,"}, "id": 42}"# + "\r\n")
        #expect(reply.brokerID == 42)
        #expect(reply.has("return"))
        #expect(!reply.has("s"))
    }

    @Test func swapsTheIDForTheClientsOwn() throws {
        let reply = try line(#"{"return": {"status": "running"}, "id": 42}"# + "\r\n")
        #expect(String(decoding: reply.replacingID(with: Array(#"["a", 1]"#.utf8)), as: UTF8.self)
            == #"{"return": {"status": "running"}, "id": ["a", 1]}"# + "\r\n")
        #expect(String(decoding: reply.replacingID(with: nil), as: UTF8.self)
            == #"{"return": {"status": "running"}}"# + "\r\n")
        let error = try line(#"{"id": 7, "error": {"class": "GenericError", "desc": "x"}}"# + "\r\n")
        #expect(String(decoding: error.replacingID(with: nil), as: UTF8.self)
            == #"{"error": {"class": "GenericError", "desc": "x"}}"# + "\r\n")
        #expect(String(decoding: error.replacingID(with: Array("\"q\"".utf8)), as: UTF8.self)
            == #"{"id": "q", "error": {"class": "GenericError", "desc": "x"}}"# + "\r\n")
    }

    @Test func garbageIsNotALine() {
        #expect(UpstreamLine(ArraySlice("nonsense\r\n".utf8)) == nil)
        #expect(UpstreamLine(ArraySlice(#"{"a": "#.utf8)) == nil)
        #expect(UpstreamLine(ArraySlice("{}\r\n".utf8)) != nil)
    }
}
