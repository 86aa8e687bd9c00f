import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// A VMM that sends garbage: each bad line is logged and dropped, the session and every
/// client keep working, and nothing reaches the clients but well-formed messages.
@Suite(.serialized) struct UpstreamGarbageTests {
    @Test func garbageFromTheVMMIsDroppedAndTheSessionGoesOn() throws {
        let directory = TemporaryDirectory.forTest()
        let peer = try ScriptedQMPPeer(path: directory.file("scripted.qmp")) { command, _ in
            command == "query-name" ? .object(["name": .string("scripted")]) : .object()
        }
        defer { peer.close() }
        let broker = try BrokerInstance(upstream: peer.path, in: directory)
        let client = try broker.client()
        #expect(try client.execute("query-name")["return"]?["name"]?.string == "scripted")

        peer.sendRaw("this is not JSON\r\n[1, 2, 3]\r\n{\"neither\": \"reply nor event\"}\r\n{\"return\": {}, \"id\": 999999}\r\n")
        peer.emit("AFTER_GARBAGE", data: .object(["ok": .bool(true)]))
        let event = try #require(try client.nextEvent("AFTER_GARBAGE"))
        #expect(event["data"]?["ok"]?.bool == true)
        // The scripted VMM cannot trace: the broker's BROKER_LINK_RESET_WATCH about that may come; nothing else.
        while let message = try client.readMessage(timeout: 0.2) {
            #expect(message["event"]?.string == "BROKER_LINK_RESET_WATCH", "nothing of the garbage reached the client: \(message)")
        }
        #expect(try client.execute("query-name", id: .string("again"))["id"]?.string == "again")
    }
}
