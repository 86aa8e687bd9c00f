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
        let peer = try ScriptedQMPPeer(path: directory.file("scripted.qmp")) { command, arguments in
            let path = arguments?["path"]?.string ?? ""
            switch (command, path, arguments?["property"]?.string) {
            case ("query-status", _, _):
                return .object(["status": .string("running"), "singlestep": .bool(false), "running": .bool(true)])
            case ("qom-list", "/machine/peripheral", _):
                return .array([
                    .object(["name": .string("type"), "type": .string("string")]),
                    .object(["name": .string("hostdev0"), "type": .string("child<vfio-pci>")]),
                    .object(["name": .string("net0"), "type": .string("child<virtio-net-pci>")]),
                ])
            case ("qom-list", "/machine/peripheral-anon", _):
                return .array([.object(["name": .string("device[0]"), "type": .string("child<vfio-pci>")])])
            case ("qom-get", "/machine/peripheral/hostdev0", "host"):
                return .string("0000:3b:00.0")
            case ("qom-get", "/machine/peripheral-anon/device[0]", "host"):
                return .string("")
            case ("qom-get", "/machine/peripheral-anon/device[0]", "sysfsdev"):
                return .string("/sys/bus/pci/devices/0000:5e:00.1")
            case ("qom-get", _, _):
                return .string("")
            default:
                return .object()
            }
        }
        defer { peer.close() }
        let broker = try BrokerInstance(upstream: peer.path, in: directory)
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
        #expect(peer.commands.contains("qom-list"))

        peer.emit("DEVICE_DELETED", data: .object(["device": .string("hostdev0"),
                                                   "path": .string("/machine/peripheral/hostdev0")]))
        #expect(try client.nextEvent("DEVICE_DELETED") != nil)
        let remaining = try client.execute("query-vfio-devices")["return"]?.elements.map { $0["id"]?.string }
        #expect(remaining == ["/machine/peripheral-anon/device[0]"])
    }
}
