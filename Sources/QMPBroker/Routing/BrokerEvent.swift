import BrokerState
import QMPWire

/// Events the broker emits itself, shaped exactly like QEMU's: `timestamp`
/// (`seconds`, `microseconds`), `event`, `data`, in QEMU's member order. Serialised
/// once; the same bytes go to every client.
package enum BrokerEvent {
    package static func wireMessage(_ name: String, data: JSON? = nil) -> [UInt8] {
        message(name, data: data).wireMessage()
    }

    package static func message(_ name: String, data: JSON? = nil) -> JSON {
        let now = WallClock.qmpTimestamp()
        let timestamp = JSON.qdict(["seconds": .integer(now.seconds), "microseconds": .integer(now.microseconds)])
        // QEMU's monitor_qapi_event_emit inserts timestamp, event, then data.
        if let data { return .qdict(["timestamp": timestamp, "event": .string(name), "data": data]) }
        return .qdict(["timestamp": timestamp, "event": .string(name)])
    }
}
