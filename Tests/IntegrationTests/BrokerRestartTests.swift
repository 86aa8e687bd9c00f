import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// The link-error flag lives in SQLite under --state-dir: a broker killed with SIGKILL right
/// after reporting a fatal error still protects the VM when it comes back.
@Suite(.serialized) struct BrokerRestartTests {
    @Test func flagSurvivesSIGKILLAndTheNextLinkResetStillStops() throws {
        let directory = try TemporaryDirectory()
        let qtestPath = directory.file("qtest.sock")
        let qemu = try QEMUInstance(in: directory) { $0.qtestSocket = qtestPath; $0.extra += ["-qtest-log", "none"] }
        let qtest = try QTestConnection(path: qtestPath)
        try qtest.enableECAM()
        let sysfs = FakeSysfsTree(in: directory)
        directory.writeBrokerConfig(qemu: qemu, sysfs: sysfs, policy: "forward")
        let arguments = ["run", "--config", directory.file("broker.toml")]
        let socket = directory.file("vm1.qmp")
        var broker: BrokerProcess? = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
        var client = try QMPClient(path: socket)
        try client.negotiate()
        _ = try client.execute("cont")
        let fd = try hostFatalErrorThroughEventFD(client, sysfs: sysfs)
        defer { close(fd) }
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        broker?.kill()
        broker = nil
        #expect(client.waitForClose(timeout: 5))

        broker = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
        client = try QMPClient(path: socket)
        try client.negotiate()
        let devices = try client.execute("query-vfio-devices")
        #expect(devices["return"]?[0]?["link-error"]?.bool == true, "\(devices) \(directory.read("broker.log"))")
        try waitUntilTracing(socket: socket)
        try qtest.secondaryBusReset(slot: 0x1C)
        let reset = try client.nextEvent("VFIO_LINK_RESET")
        #expect(reset?["data"]?["action"]?.string == "stop", "\(directory.read("broker.log"))")
        #expect(try client.nextEvent("STOP") != nil)
        #expect(try client.execute("query-status")["return"]?["status"]?.string == "paused")
        _ = qemu
    }

    @Test func errorsWhileTheBrokerWasAwayAreReportedWhenItComesBack() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let sysfs = FakeSysfsTree(in: directory)
        directory.writeBrokerConfig(qemu: qemu, sysfs: sysfs, policy: "report")
        let arguments = ["run", "--config", directory.file("broker.toml")]
        let socket = directory.file("vm1.qmp")
        var broker: BrokerProcess? = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
        var client = try QMPClient(path: socket)
        try client.negotiate()
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["link-error"]?.bool == false)
        broker?.kill()
        broker = nil
        #expect(client.waitForClose(timeout: 5))

        // Nobody watches: the host counts a fatal error.
        sysfs.set(correctable: [:], nonFatal: [:], fatal: ["DLP": 1])
        broker = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
        client = try QMPClient(path: socket)
        try client.negotiate()
        // Reported at attach, possibly before this client connected: the replay ring has it.
        let deadline = Deadline(after: 10)
        var replayed: JSON?
        while replayed == nil, !deadline.passed {
            replayed = try client.execute("query-broker-events", arguments: .object(["after": .integer(0)]))["return"]?["events"]?
                .elements.first { $0["event"]?.string == "VFIO_PCI_ERROR" }
            if replayed == nil { usleep(20_000) }
        }
        let event = try #require(replayed, "\(directory.read("broker.log"))")
        #expect(event["data"]?["severity"]?.string == "fatal")
        #expect(event["data"]?["errors"]?.elements.map(\.string) == ["DLP"])
        #expect(event["data"]?["source"]?.string == "sysfs")
        #expect(event["data"]?["note"]?.string?.contains("while the broker was not running") == true)
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["link-error"]?.bool == true)

        // Reported once: a third run finds nothing new.
        broker?.kill()
        broker = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
        client = try QMPClient(path: socket)
        try client.negotiate()
        usleep(500_000)
        let again = try client.execute("query-broker-events", arguments: .object(["after": .integer(0)]))["return"]?["events"]
        #expect(again?.elements.contains { $0["event"]?.string == "VFIO_PCI_ERROR" } == false, "\(String(describing: again))")
        _ = (qemu, broker)
    }
}
