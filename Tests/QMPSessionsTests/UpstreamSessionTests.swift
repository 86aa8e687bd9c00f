@testable import QMPSessions
import QMPWire
import Testing

@Suite struct UpstreamSessionTests {
    let greeting = #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#

    func receive(_ session: inout UpstreamSession, _ text: String) throws -> UpstreamSession.Action {
        session.received(try #require(UpstreamLine(ArraySlice(text.utf8))))
    }

    @Test func greetingNegotiationReady() throws {
        var session = UpstreamSession()
        #expect(session.connected() == .startHandshakeTimer(attempt: 1, milliseconds: 10_000))
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
        _ = session.connected()
        #expect(try receive(&session, #"{"QMP": {"version": {}, "capabilities": []}}"#) == .negotiate(oob: false))
        #expect(!session.oobOffered)
    }

    @Test func somethingElseThanAGreetingIsAViolation() throws {
        var session = UpstreamSession()
        _ = session.connected()
        guard case .protocolViolation = try receive(&session, #"{"hello": 1}"#) else { Issue.record("accepted"); return }
    }

    @Test func strayMessageWhenReadyIsIgnoredNotFatal() throws {
        var session = UpstreamSession()
        _ = session.connected()
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
        _ = session.connected()
        _ = try receive(&session, greeting)
        _ = try receive(&session, #"{"return": {}}"#)
        let (wasReady, action) = session.closed()
        #expect(wasReady)
        #expect(action == .reconnect(afterMilliseconds: 50))
        #expect(session.greeting != nil)  // kept for clients arriving while the VMM is away
    }
}

/// Timeouts and backoff towards the VMM: input → expected action, no sockets, no clocks.
@Suite struct UpstreamSessionTimingTests {
    let greeting = #"{"QMP": {"version": {}, "capabilities": []}}"#

    func receive(_ session: inout UpstreamSession, _ text: String) throws -> UpstreamSession.Action {
        session.received(try #require(UpstreamLine(ArraySlice(text.utf8))))
    }

    func isViolation(_ action: UpstreamSession.Action) -> Bool {
        if case .protocolViolation = action { return true }
        return false
    }

    /// A VMM that accepts and then says nothing (or half a greeting: no line ever ends).
    @Test func silentVMMIsDroppedWhenTheHandshakeTimerFires() {
        var session = UpstreamSession(handshakeTimeoutMilliseconds: 300)
        #expect(session.connected() == .startHandshakeTimer(attempt: 1, milliseconds: 300))
        #expect(session.handshakeTimedOut(attempt: 1) == .protocolViolation("no QMP greeting within 300 ms"))
    }

    @Test func unansweredCapabilitiesAreATimeoutToo() throws {
        var session = UpstreamSession(handshakeTimeoutMilliseconds: 300)
        _ = session.connected()
        #expect(try receive(&session, greeting) == .negotiate(oob: false))
        #expect(session.handshakeTimedOut(attempt: 1) == .protocolViolation("no answer to qmp_capabilities within 300 ms"))
    }

    @Test func aTimerFromAnEarlierConnectionOrAfterReadyIsIgnored() throws {
        var session = UpstreamSession()
        _ = session.connected()
        _ = session.closed()
        #expect(session.connected() == .startHandshakeTimer(attempt: 2, milliseconds: 10_000))
        #expect(session.handshakeTimedOut(attempt: 1) == .none)
        _ = try receive(&session, greeting)
        #expect(try receive(&session, #"{"return": {}}"#) == .ready)
        #expect(session.handshakeTimedOut(attempt: 2) == .none)
    }

    @Test func garbageDuringTheHandshakeIsAViolationButIgnoredWhenReady() throws {
        var session = UpstreamSession()
        _ = session.connected()
        #expect(isViolation(session.receivedGarbage("nonsense")))
        _ = session.closed()
        _ = session.connected()
        _ = try receive(&session, greeting)
        _ = try receive(&session, #"{"return": {}}"#)
        guard case .ignore = session.receivedGarbage("nonsense") else { Issue.record("not ignored"); return }
    }

    /// A VMM that keeps answering with something other than a greeting: the retries slow
    /// down to the cap instead of hammering it every 50 ms; one good session resets them.
    @Test func backoffGrowsAcrossFailedHandshakesAndResetsAfterAGoodSession() throws {
        var session = UpstreamSession()
        var delays: [Int] = []
        for _ in 0..<7 {
            _ = session.connected()
            #expect(isViolation(try receive(&session, #"{"hello": 1}"#)))
            if case .reconnect(let ms) = session.closed().action { delays.append(ms) }
        }
        #expect(delays == [50, 100, 200, 400, 800, 1000, 1000])
        _ = session.connected()
        _ = try receive(&session, greeting)
        _ = try receive(&session, #"{"return": {}}"#)
        let (wasReady, action) = session.closed()
        #expect(wasReady)
        #expect(action == .reconnect(afterMilliseconds: 50))
        #expect(session.connectFailed() == .reconnect(afterMilliseconds: 100))
    }
}

@Suite struct EventRingTests {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func numbersAreSplicedBeforeTheClosingBrace() {
        var ring = EventRing(capacity: 4)
        let event = Array(#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#.utf8) + [13, 10]
        #expect(text(ring.record(event))
            == #"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP", "broker-seq": 1}"# + "\r\n")
        #expect(ring.nextSequence == 2)
    }

    @Test func replayReturnsWhatFollowsAndCountsWhatFellOut() {
        var ring = EventRing(capacity: 3)
        for number in 1...5 { _ = ring.record(Array(#"{"event": "E\#(number)"}"#.utf8)) }
        let all = ring.events(after: 0)
        #expect(all.events.map(text) == [#"{"event": "E3", "broker-seq": 3}"#, #"{"event": "E4", "broker-seq": 4}"#,
                                        #"{"event": "E5", "broker-seq": 5}"#])
        #expect(all.missed == 2)
        #expect(ring.events(after: 3).events.map(text) == [#"{"event": "E4", "broker-seq": 4}"#, #"{"event": "E5", "broker-seq": 5}"#])
        #expect(ring.events(after: 3).missed == 0)
        #expect(ring.events(after: 5).events.isEmpty)
        #expect(ring.events(after: 9).events.isEmpty)
    }
}

@Suite struct QMPLineSplittingTests {
    @Test func linesSplitAcrossReads() {
        var lines: [String] = []
        let text = "{\"a\": 1}\r\n{\"b\": 2}\r\n{\"c\""
        for cut in [3, 12, 20] {
            var framer = LineSplitter.qmp
            lines = []
            let bytes = Array(text.utf8)
            for part in [bytes[..<cut], bytes[cut...]] {
                Array(part).withUnsafeBytes { raw in
                    framer.feed(raw) { lines.append(String(decoding: $0, as: UTF8.self)) }
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
