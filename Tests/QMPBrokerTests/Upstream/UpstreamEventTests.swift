import ErrorEvents
@testable import QMPBroker
@testable import QMPSessions
import QMPWire
import Testing

/// The events the broker acts on, read from lines as QEMU 7.2 writes them.
@Suite struct UpstreamEventTests {
    func event(_ text: String) throws -> UpstreamEvent {
        UpstreamEvent(try #require(UpstreamLine(ArraySlice(text.utf8))))
    }

    static func line(_ name: String, data: String? = nil) -> String {
        #"{"timestamp": {"seconds": 1764590000, "microseconds": 123456}, "event": "\#(name)""#
            + (data.map { #", "data": \#($0)"# } ?? "") + "}"
    }

    @Test func runStateEvents() throws {
        #expect(try event(Self.line("STOP")) == .stop)
        #expect(try event(Self.line("RESUME")) == .resume)
        #expect(try event(Self.line("RESET", data: #"{"guest": true, "reason": "guest-reset"}"#)) == .reset)
        #expect(try event(Self.line("STOP")).runEvent == .stopped)
        #expect(try event(Self.line("RESUME")).runEvent == .resumed)
        #expect(try event(Self.line("RESET", data: #"{"guest": false, "reason": "host-qmp-system-reset"}"#)).runEvent == .reset)
    }

    @Test func deviceDeletedWithAndWithoutAnID() throws {
        #expect(try event(Self.line("DEVICE_DELETED", data: #"{"device": "hostdev0", "path": "/machine/peripheral/hostdev0"}"#))
            == .deviceDeleted(id: "hostdev0", path: "/machine/peripheral/hostdev0"))
        #expect(try event(Self.line("DEVICE_DELETED", data: #"{"path": "/machine/peripheral-anon/device[0]"}"#))
            == .deviceDeleted(id: nil, path: "/machine/peripheral-anon/device[0]"))
        #expect(try event(Self.line("DEVICE_DELETED", data: #"{"path": "/machine/peripheral/hostdev0"}"#)).runEvent == nil)
    }

    @Test func otherEventsKeepTheirName() throws {
        #expect(try event(Self.line("SHUTDOWN", data: #"{"guest": true, "reason": "guest-shutdown"}"#)) == .other(name: "SHUTDOWN"))
        #expect(try event(Self.line("BLOCK_JOB_READY")).runEvent == nil)
        // A name with an escape is not read without parsing: the broker does not act on it.
        #expect(try event(#"{"event": "ST\u004fP"}"#) == .other(name: nil))
        #expect(try event(#"{"timestamp": {"seconds": 1, "microseconds": 2}}"#) == .other(name: nil))
    }
}
