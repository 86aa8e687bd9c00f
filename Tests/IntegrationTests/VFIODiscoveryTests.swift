import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Auto-discovery of vfio-pci devices via QOM, against a scripted peer answering the
/// exact commands QEMU would (stock QEMU cannot create a vfio-pci device without hardware).
@Suite(.serialized) struct VFIODiscoveryTests {
    @Test func vfioDevicesAreFoundAddedAndDropped() throws {
        let directory = try TemporaryDirectory()
        var script = VMMScript()
        script.handler = { command in
            switch (command.name, command.argument("path") ?? "", command.argument("property")) {
            case ("qom-list", "/machine/peripheral", _):
                return .success(#"[{"name": "type", "type": "string"}, {"name": "hostdev0", "type": "child<vfio-pci>"}, "#
                    + #"{"name": "net0", "type": "child<virtio-net-pci>"}]"#)
            case ("qom-list", "/machine/peripheral-anon", _):
                return .success(#"[{"name": "device[0]", "type": "child<vfio-pci>"}]"#)
            case ("qom-get", "/machine/peripheral/hostdev0", "host"):
                return .success(#""0000:3b:00.0""#)
            case ("qom-get", "/machine/peripheral-anon/device[0]", "sysfsdev"):
                return .success(#""/sys/bus/pci/devices/0000:5e:00.1""#)
            case ("qom-get", _, _):
                return .success(#""""#)
            default:
                return nil
            }
        }
        let peer = try ScriptedVMMGroup.shared.listen(at: directory.file("scripted.qmp"), script: script)
        defer { peer.close() }
        let broker = try BrokerInstance(upstream: directory.file("scripted.qmp"), in: directory)
        let client = try broker.client()
        var devices: [JSON] = []
        let deadline = Deadline(after: 10)
        while devices.count < 2 && !deadline.passed {
            devices = try client.execute("query-vfio-devices")["return"]?.elements ?? []
            usleep(10_000)
        }
        #expect(devices.map { $0["id"]?.string } == ["hostdev0", "/machine/peripheral-anon/device[0]"]
            || devices.map { $0["id"]?.string } == ["/machine/peripheral-anon/device[0]", "hostdev0"])
        let hosts = Set(devices.compactMap { $0["host"]?.string })
        #expect(hosts == ["0000:3b:00.0", "0000:5e:00.1"])
        #expect(peer.commandNames.contains("qom-list"))

        peer.emit("DEVICE_DELETED", data: #"{"device": "hostdev0", "path": "/machine/peripheral/hostdev0"}"#)
        #expect(try client.nextEvent("DEVICE_DELETED") != nil)
        let remaining = try client.execute("query-vfio-devices")["return"]?.elements.map { $0["id"]?.string }
        #expect(remaining == ["/machine/peripheral-anon/device[0]"])
    }
}
