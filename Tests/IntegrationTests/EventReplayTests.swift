import BrokerTesting
import Dispatch
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Every event carries `broker-seq`; a client that drops out in the middle of a burst
/// reconnects, asks `query-broker-events` for what came after the last number it saw,
/// and ends up with every event exactly once.
@Suite(.serialized) struct EventReplayTests {
    let directory = TemporaryDirectory.forTest()

    @Test func aClientThatLeavesDuringABurstLosesNothing() throws {
        let peer = try ScriptedVMMGroup.shared.listen(at: directory.file("scripted.qmp"))
        defer { peer.close() }
        let broker = try BrokerInstance(upstream: directory.file("scripted.qmp"), in: directory) {
            $0.traceLogPath = nil
            $0.eventRingSize = 4096
        }
        var client: QMPClient? = try broker.client()
        _ = try client!.execute("query-status")  // the broker's own attach-time commands are done
        let total = 2000
        DispatchQueue.global().async {
            for number in 1...total {
                peer.emit("BURST", data: #"{"n": \#(number)}"#)
                if number % 100 == 0 { usleep(10_000) }
            }
        }
        var seen: [Int64: Int64] = [:]  // n → broker-seq
        var lastSequence: Int64 = 0
        func note(_ event: JSON) {
            guard event["event"]?.string == "BURST", let number = event["data"]?["n"]?.integer,
                  let sequence = event["broker-seq"]?.integer else { return }
            #expect(seen.updateValue(sequence, forKey: number).map { $0 == sequence } ?? true, "one number per event")
            lastSequence = max(lastSequence, sequence)
        }
        while seen.count < 300, let event = try client!.nextEvent("BURST", timeout: 10) { note(event) }
        #expect(seen.count == 300)
        client = nil  // gone in the middle of the burst
        usleep(200_000)

        let back = try broker.client()
        let replay = try back.execute("query-broker-events", arguments: .object(["after": .integer(lastSequence)]))
        #expect(replay["return"]?["missed"]?.integer == 0)
        let replayed = replay["return"]?["events"]?.elements ?? []
        #expect(!replayed.isEmpty)
        replayed.forEach(note)
        while seen.count < total, let event = try back.nextEvent("BURST", timeout: 10) { note(event) }
        #expect(seen.count == total)
        #expect(Set(seen.keys) == Set((1...Int64(total)).map { $0 }))
        // Numbers are in order of the events: n and broker-seq grow together.
        let ordered = seen.sorted { $0.key < $1.key }.map(\.value)
        #expect(ordered == ordered.sorted())
    }

    @Test func replayCountsWhatTheRingNoLongerHolds() throws {
        let peer = try ScriptedVMMGroup.shared.listen(at: directory.file("scripted-small.qmp"))
        defer { peer.close() }
        let broker = try BrokerInstance(upstream: directory.file("scripted-small.qmp"), in: directory) {
            $0.traceLogPath = nil
            $0.eventRingSize = 10
        }
        let client = try broker.client()
        _ = try client.execute("query-status")
        for number in 1...30 { peer.emit("BURST", data: #"{"n": \#(number)}"#) }
        var last: JSON?
        while last?["data"]?["n"]?.integer != 30, let event = try client.nextEvent("BURST") { last = event }
        let replay = try client.execute("query-broker-events", arguments: .object(["after": .integer(0)]))
        #expect(replay["return"]?["events"]?.elements.count == 10)
        let next = try #require(replay["return"]?["next-seq"]?.integer)
        #expect(replay["return"]?["missed"]?.integer == next - 1 - 10)
        #expect(try client.execute("query-broker-events", arguments: .object(["after": .string("x")]))["error"]?["desc"]?.string
            == "Invalid parameter type for 'after', expected: integer")
    }
}
