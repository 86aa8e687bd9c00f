import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// SIGHUP re-reads the config through the built binary: a bad one is refused whole and
/// logged, a good one adds and removes VMs and devices and changes policies while the
/// clients of an unchanged VM stay connected.
@Suite(.serialized) struct ReloadTests {
    func config(_ directory: TemporaryDirectory, qmp: String, sysfs: FakeSysfsTree, policy: String,
                extraDevice: Bool = false, secondVM: Bool = false) -> String {
        var text = """
            socket-dir = "\(directory.path)"
            sysfs-root = "\(sysfs.root)"
            [[vm]]
            name = "vm1"
            qmp = "\(qmp)"
            [[vm.device]]
            id = "dev0"
            host = "\(sysfs.host)"
            policy = "\(policy)"

            """
        if extraDevice { text += "[[vm.device]]\nid = \"dev1\"\nhost = \"0000:5e:00.0\"\n" }
        if secondVM { text += "[[vm]]\nname = \"vm2\"\nqmp = \"\(directory.file("vm2.qemu"))\"\n" }
        return text
    }

    func waitForLog(_ directory: TemporaryDirectory, _ text: String, count: Int = 1) -> Bool {
        let deadline = Deadline(after: 20)
        repeat {
            if directory.read("broker.log").components(separatedBy: text).count > count { return true }
            usleep(20_000)
        } while !deadline.passed
        return false
    }

    @Test func reloadKeepsClientsAndRefusesABadConfigWhole() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let sysfs = FakeSysfsTree(in: directory)
        let file = directory.file("broker.toml")
        directory.write("broker.toml", config(directory, qmp: qemu.qmpSocket, sysfs: sysfs, policy: "report"))
        let broker = try BrokerProcess(arguments: ["run", "--config", file], logPath: directory.file("broker.log"))
        let client = try QMPClient(path: directory.file("vm1.qmp"))
        try client.negotiate()

        directory.write("broker.toml", config(directory, qmp: qemu.qmpSocket, sysfs: sysfs, policy: "halt", secondVM: true))
        kill(broker.process.pid, SIGHUP)
        #expect(waitForLog(directory, "reload refused: the new configuration has problems; the running one is kept"))
        #expect(directory.read("broker.log").contains("unknown policy \"halt\""), "\(directory.read("broker.log"))")
        #expect(access(directory.file("vm2.qmp"), F_OK) != 0)
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["policy"]?.string == "report")

        directory.write("broker.toml", config(directory, qmp: qemu.qmpSocket, sysfs: sysfs, policy: "stop",
                                              extraDevice: true, secondVM: true))
        kill(broker.process.pid, SIGHUP)
        #expect(waitForLog(directory, "configuration reloaded"))
        let log = directory.read("broker.log")
        #expect(log.contains("VM vm1: device dev0 policy report -> stop"), "\(log)")
        #expect(log.contains("VM vm1: device dev1 added (host 0000:5e:00.0, policy forward)"))
        #expect(log.contains("VM vm2 added"))
        #expect(access(directory.file("vm2.qmp"), F_OK) == 0)
        // The same connection, never dropped.
        let devices = try client.execute("query-vfio-devices")["return"]
        #expect(devices?.elements.map { $0["id"]?.string } == ["dev0", "dev1"])
        #expect(devices?[0]?["policy"]?.string == "stop")

        directory.write("broker.toml", config(directory, qmp: qemu.qmpSocket, sysfs: sysfs, policy: "stop"))
        kill(broker.process.pid, SIGHUP)
        #expect(waitForLog(directory, "configuration reloaded", count: 2))
        #expect(directory.read("broker.log").contains("VM vm2 removed"))
        #expect(try client.execute("query-vfio-devices")["return"]?.elements.count == 1)
        #expect(broker.process.isRunning)
        _ = qemu
    }
}
