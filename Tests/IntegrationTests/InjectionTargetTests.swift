import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Where errors are injected, and events that say only what happened (SPEC 9: QEMU 7.2
/// drops errors injected at e1000e and cannot inject at a vfio-pci device).
@Suite(.serialized) struct InjectionTargetTests {
    private func broker(model: String, devices: [VFIORecoverySettings.DeviceConfiguration])
        throws -> (QEMUInstance, BrokerInstance, QMPClient, TemporaryDirectory) {
        let directory = TemporaryDirectory.forTest()
        let qemu = try QEMUInstance(in: directory) { $0.deviceModel = model }
        let broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory) {
            $0.recovery.allowInject = true
            $0.recovery.pollMilliseconds = 0
            $0.recovery.devices = devices
        }
        let client = try broker.client()
        try waitUntilTracing(socket: broker.socketPath)
        return (qemu, broker, client, directory)
    }

    private func inject(_ client: QMPClient, _ device: String) throws -> JSON {
        let reply = try client.execute("x-vfio-inject-error", arguments: .object([
            "device": .string(device), "severity": .string("non-fatal"), "errors": .strings(["CmpltTO"])]))
        #expect(reply["return"] != nil, "\(reply)")
        return try #require(try client.nextEvent("VFIO_PCI_ERROR"))
    }

    /// Waits until QOM placement has chosen the device's target.
    private func injectAt(_ client: QMPClient, becomes target: String) throws -> Bool {
        let deadline = Deadline(after: 5)
        while !deadline.passed {
            if try client.execute("query-vfio-devices")["return"]?[0]?["inject-at"]?.string == target { return true }
            usleep(20_000)
        }
        return false
    }

    @Test func aDeviceThatCannotReportGetsThePortAbove() throws {
        let (qemu, vmBroker, client, directory) = try broker(model: "e1000e", devices: [.init(id: "dev0", host: "0000:3b:00.0")])
        #expect(try injectAt(client, becomes: "rp0"))
        let event = try inject(client, "dev0")
        #expect(event["data"]?["action"]?.string == "forward")
        #expect(event["data"]?["note"]?.string == "injected at rp0")
        withExtendedLifetime((qemu, vmBroker, directory)) {}
    }

    @Test func aRefusedTargetFallsBackToThePortAbove() throws {
        var device = VFIORecoverySettings.DeviceConfiguration(id: "dev0", host: "0000:3b:00.0")
        device.injectAt = "nosuch"
        let (qemu, vmBroker, client, directory) = try broker(model: "virtio-rng-pci,aer=on", devices: [device])
        let event = try inject(client, "dev0")
        #expect(event["data"]?["action"]?.string == "forward", "\(event)")
        #expect(event["data"]?["note"]?.string?.contains("injected at rp0") == true, "\(event)")
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["inject-at"]?.string == "rp0")
        withExtendedLifetime((qemu, vmBroker, directory)) {}
    }

    @Test func anInjectionNothingTookIsNotCalledForwarded() throws {
        var device = VFIORecoverySettings.DeviceConfiguration(id: "ghost", host: "0000:3b:00.0")
        device.injectAt = "nosuch"
        let (qemu, vmBroker, client, directory) = try broker(model: "virtio-rng-pci,aer=on", devices: [device])
        // QOM has no `ghost`: shown as absent once the broker has looked at attach.
        let deadline = Deadline(after: 5)
        while try client.execute("query-vfio-devices")["return"]?[0]?["present"]?.bool != false && !deadline.passed {
            usleep(20_000)
        }
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["present"]?.bool == false)
        let event = try inject(client, "ghost")
        #expect(event["data"]?["action"]?.string == "none", "\(event)")
        let note = try #require(event["data"]?["note"]?.string)
        #expect(note.hasPrefix("not forwarded: QEMU refused it at nosuch"), "\(note)")
        withExtendedLifetime((qemu, vmBroker, directory)) {}
    }
}
