@testable import QMPWire
import Testing

/// Messages the broker writes must list members the way QEMU's QDict does.
@Suite struct QDictOrderTests {
    @Test func matchesOrdersSeenFromQEMU() {
        #expect(QDictOrder.ordered(["error", "id"]) == ["id", "error"])
        #expect(QDictOrder.ordered(["return", "id"]) == ["return", "id"])
        #expect(QDictOrder.ordered(["timestamp", "event", "data"]) == ["timestamp", "event", "data"])
        #expect(QDictOrder.ordered(["seconds", "microseconds"]) == ["seconds", "microseconds"])
        #expect(QDictOrder.ordered(["class", "desc"]) == ["class", "desc"])
        // Same bucket: the later insertion comes first (QEMU's StatusInfo: running, singlestep, status).
        #expect(QDictOrder.ordered(["running", "singlestep", "status"]) == ["status", "singlestep", "running"])
        #expect(QDictOrder.ordered(["major", "minor", "micro"]) == ["micro", "minor", "major"])
    }

    @Test func errorReplyLooksLikeQEMUs() {
        let reply = QMPError(.commandNotFound, "The command nope has not been found").reply(id: .integer(3))
        #expect(reply.description
            == #"{"id": 3, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#)
    }
}
