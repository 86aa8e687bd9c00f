import BrokerTesting
import KernelTracepoint
import QMPBroker
import QMPWire
import Testing

/// `ras:aer_event` records reach the devices they name as any other notification does:
/// the counters are read and classified, and the event says where the news came from.
@Suite struct AERTracepointWiringTests {
    /// A correctable error fires no eventfd and no uevent: before the tracepoint, only the
    /// poll found it.
    @Test func aCorrectableErrorIsAnnouncedByTheTracepoint() throws {
        let recovery = try ScriptedRecovery()
        recovery.sysfs.set(correctable: ["RxErr": 1], nonFatal: [:], fatal: [:])
        recovery.rig.broker.deliverAERTraceEvent(AERTraceEvent(deviceName: recovery.sysfs.host, status: 0x1,
                                                               severity: .correctable, tlpHeaderValid: false))
        let event = try #require(try recovery.nextEvent("VFIO_PCI_ERROR"))
        #expect(event["data"]?["source"]?.string == "aer-tracepoint")
        #expect(event["data"]?["severity"]?.string == "correctable")
        #expect(event["data"]?["errors"]?.elements.map(\.string) == ["RxErr"])
    }

    /// A record naming a function the VM does not watch (nor any port above its devices)
    /// is not its news.
    @Test func aRecordForAnotherFunctionIsIgnored() throws {
        let recovery = try ScriptedRecovery()
        recovery.sysfs.set(correctable: [:], nonFatal: ["CmpltTO": 1], fatal: [:])
        recovery.rig.broker.deliverAERTraceEvent(AERTraceEvent(deviceName: "0000:5e:00.0", status: 0x4000,
                                                               severity: .nonFatal, tlpHeaderValid: false))
        recovery.rig.broker.deliverAERTraceEvent(AERTraceEvent(deviceName: "not a pci address", status: 0x4000,
                                                               severity: .nonFatal, tlpHeaderValid: false))
        // Only the next record, for dev0, reads the counters.
        recovery.sysfs.set(correctable: ["BadTLP": 1], nonFatal: ["CmpltTO": 1], fatal: [:])
        recovery.rig.broker.deliverAERTraceEvent(AERTraceEvent(deviceName: recovery.sysfs.host, status: 0x40,
                                                               severity: .correctable, tlpHeaderValid: false))
        let event = try #require(try recovery.nextEvent("VFIO_PCI_ERROR"))
        #expect(event["data"]?["severity"]?.string == "non-fatal")
        #expect(event["data"]?["errors"]?.elements.map(\.string) == ["CmpltTO"])
        let next = try #require(try recovery.nextEvent("VFIO_PCI_ERROR"))
        #expect(next["data"]?["errors"]?.elements.map(\.string) == ["BadTLP"])
    }

    /// With no counter moved (a device without AER files), the record's own severity
    /// speaks; the same error announced again at once is not a second error.
    @Test func theRecordsSeverityStandsInForSilentCounters() throws {
        let recovery = try ScriptedRecovery()
        let record = AERTraceEvent(deviceName: recovery.sysfs.host, status: 0, severity: .nonFatal, tlpHeaderValid: false)
        recovery.rig.broker.deliverAERTraceEvent(record)
        recovery.rig.broker.deliverAERTraceEvent(record)
        let event = try #require(try recovery.nextEvent("VFIO_PCI_ERROR"))
        #expect(event["data"]?["severity"]?.string == "non-fatal")
        #expect(event["data"]?["note"]?.string?.contains("severity unknown") != true)
        #expect(try recovery.client.nextEvent("VFIO_PCI_ERROR", timeout: 0.5) == nil)
    }

    /// `device_add` of a vfio-pci device: the broker watches it and takes its trigger over
    /// when QEMU answers, before the client hears and before the QOM walk (here the
    /// takeover fails, as no process holds 0000:3d:00.0, and says why).
    @Test func deviceAddTakesTheTriggerOverBeforeTheClientHears() throws {
        let recovery = try ScriptedRecovery()
        // As QEMU does, the device exists once `device_add` is answered: the rediscovery that
        // follows finds it in QOM (else it would take it for gone and settle on eventfd).
        recovery.vmm.updateScript {
            $0.machine.devices.append(.init(id: "dev2", type: "vfio-pci", parentBus: "/machine/peripheral/rp0/rp0",
                                            bus: 1, slot: 1, host: "0000:3d:00.0"))
        }
        recovery.vmm.reply(to: "device_add", with: .empty)
        try recovery.client.send(#"{"execute": "device_add", "arguments": {"driver": "vfio-pci", "id": "dev2", "host": "0000:3d:00.0"}, "id": 1}"#)
        #expect(try recovery.client.nextReply() == #"{"return": {}, "id": 1}"#)
        try recovery.client.send(#"{"execute": "query-vfio-devices", "id": "q"}"#)
        let reply = try #require(try recovery.client.nextReply().flatMap { try? JSON.parse($0) })
        let added = try #require(reply["return"]?.elements.first { $0["id"]?.string == "dev2" })
        #expect(added["host"]?.string == "0000:3d:00.0")
        #expect(added["error-trigger"]?.string == "takeover")
        #expect(added["error-trigger-error"]?.string != nil)
    }
}
