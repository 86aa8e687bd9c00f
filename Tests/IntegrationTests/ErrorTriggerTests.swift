import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing
import VFIOWatch

/// The error trigger as `query-vfio-devices` shows it with a real QEMU that owns no vfio
/// device: the broker must say that it does not hold the trigger, never pretend.
@Suite(.serialized) struct ErrorTriggerTests {
    private func deviceInfo(trigger: String?) throws -> JSON {
        let directory = TemporaryDirectory.forTest()
        let qemu = try QEMUInstance(in: directory)
        var device = VFIORecoverySettings.DeviceConfiguration(id: "dev0", host: "0000:3b:00.0")
        device.errorTrigger = trigger.flatMap(ErrorTriggerMode.init(rawValue:))
        let broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory) { $0.recovery.devices = [device] }
        let client = try broker.client()
        try waitUntilTracing(socket: broker.socketPath)
        let deadline = Deadline(after: 5)
        var info = try client.execute("query-vfio-devices")["return"]?[0]
        while !deadline.passed, trigger == "takeover", info?["error-trigger-error"] == nil {
            usleep(20_000)
            info = try client.execute("query-vfio-devices")["return"]?[0]
        }
        withExtendedLifetime((qemu, broker, directory)) {}
        return try #require(info)
    }

    @Test func aDeviceThatIsNotVFIOKeepsHandedOverEventfds() throws {
        let info = try deviceInfo(trigger: nil)  // virtio-rng-pci: QOM says it is no vfio-pci
        #expect(info["error-trigger"]?.string == "eventfd")
        #expect(info["error-trigger-error"] == nil)
        #expect(info["sources"]?.elements.contains { $0.string == "takeover" } == false)
    }

    @Test func aTakeoverThatCannotWorkSaysWhy() throws {
        let info = try deviceInfo(trigger: "takeover")
        #expect(info["error-trigger"]?.string == "takeover")
        let reason = try #require(info["error-trigger-error"]?.string)
        #expect(reason.contains("0000:3b:00.0"), "\(reason)")
        #expect(info["sources"]?.elements.contains { $0.string == "takeover" } == false)
    }
}
