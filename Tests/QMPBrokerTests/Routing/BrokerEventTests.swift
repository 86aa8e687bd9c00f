@testable import QMPBroker
import QMPWire
import Testing

/// The broker's own events must look like QEMU's: QDict member order, `\r\n` line end.
@Suite struct BrokerEventTests {
    @Test func brokerEventLooksLikeQEMUs() {
        let event = BrokerEvent.message("BROKER_VMM_CONNECTED", data: .qdict(["vm": .string("vm1")]))
        #expect(event.keys == ["timestamp", "event", "data"])
        #expect(event["timestamp"]?.keys == ["seconds", "microseconds"])
        #expect(BrokerEvent.wireMessage("X").suffix(2) == [13, 10])
    }
}
