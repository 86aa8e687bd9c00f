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
        let peer = try ScriptedVMMGroup.shared.listen(
            at: directory.file("scripted.qmp"), script: VMMScript(replies: ["query-name": .success(#"{"name": "scripted"}"#)]))
        defer { peer.close() }
        let broker = try BrokerInstance(upstream: directory.file("scripted.qmp"), in: directory)
        let client = try broker.client()
        #expect(try client.execute("query-name")["return"]?["name"]?.string == "scripted")

        peer.sendRaw("this is not JSON\r\n[1, 2, 3]\r\n{\"neither\": \"reply nor event\"}\r\n{\"return\": {}, \"id\": 999999}\r\n")
        peer.emit("AFTER_GARBAGE", data: #"{"ok": true}"#)
        let event = try #require(try client.nextEvent("AFTER_GARBAGE"))
        #expect(event["data"]?["ok"]?.bool == true)
        // The broker's BROKER_LINK_RESET_WATCH may come; nothing else.
        while let message = try client.readMessage(timeout: 0.2) {
            #expect(message["event"]?.string == "BROKER_LINK_RESET_WATCH", "nothing of the garbage reached the client: \(message)")
        }
        #expect(try client.execute("query-name", id: .string("again"))["id"]?.string == "again")
    }
}
