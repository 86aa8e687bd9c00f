import BrokerState
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
        let event = try #require(try Self.replayedError(client), "\(directory.read("broker.log"))")
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

    /// On a fatal error the broker writes `stop` first and persists the flag after it. A
    /// broker killed between the two leaves the VM paused, and the next run finds the flag
    /// again from the AER counters (the baseline stored at attach is older than the error).
    @Test func aCrashBetweenTheStopAndTheFlagWriteLeavesTheVMStoppedAndFlagged() throws {
        let directory = try TemporaryDirectory()
        let qtestPath = directory.file("qtest.sock")
        let qemu = try QEMUInstance(in: directory, directMonitor: true) {
            $0.qtestSocket = qtestPath
            $0.extra += ["-qtest-log", "none"]
        }
        let qtest = try QTestConnection(path: qtestPath)
        try qtest.enableECAM()
        let sysfs = FakeSysfsTree(in: directory)
        directory.writeBrokerConfig(qemu: qemu, sysfs: sysfs, policy: "stop")
        let arguments = ["run", "--config", directory.file("broker.toml")]
        let socket = directory.file("vm1.qmp")
        let databasePath = directory.file("state/qmp-broker.sqlite")
        var broker: BrokerProcess? = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
        var client = try QMPClient(path: socket)
        try client.negotiate()
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["link-error"]?.bool == false)
        // The flag write runs on the VM's loop, which the lock below blocks (no event
        // reaches this client meanwhile): QEMU is watched on its own second monitor.
        let direct = try qemu.directClient()
        let store = try StateStore(path: databasePath)
        // The baseline is written in the background: the catch-up later needs it on disk.
        let baselineDeadline = Deadline(after: 10)
        while try store.aerBaseline(vm: "vm1", device: "dev0", host: sysfs.host) == nil, !baselineDeadline.passed {
            usleep(20_000)
        }
        #expect(try store.aerBaseline(vm: "vm1", device: "dev0", host: sysfs.host) != nil, "\(directory.read("broker.log"))")
        // Everything that writes the file before the error is done before the lock.
        let fd = makeEventFD()
        defer { close(fd) }
        let copy = dup(fd)
        #expect(try client.execute("vfio-eventfd-add", arguments: .object([
            "device": .string("dev0"), "severity": .string("fatal")]), fds: [copy])["return"] != nil)
        close(copy)
        _ = try client.execute("cont")
        #expect(try direct.nextEvent("RESUME") != nil)

        // Another writer holds SQLite's write lock: the broker's flag write waits for it
        // (busy timeout 2 s), as it would behind an operator's sqlite3.
        let locker = try ChildProcess(["python3", "-c", """
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(120)
            """, databasePath], outputPath: directory.file("lock.log"))
        let lockDeadline = Deadline(after: 10)
        while !directory.read("lock.log").contains("locked"), !lockDeadline.passed { usleep(10_000) }
        try #require(directory.read("lock.log").contains("locked"), "\(directory.read("lock.log"))")

        let errorAt = Deadline.now()
        sysfs.set(correctable: [:], nonFatal: [:], fatal: ["DLP": 1])
        signal(fd)
        // The stop reached QEMU well inside the busy timeout, so it went out before the write.
        try #require(try direct.nextEvent("STOP", timeout: 1.5) != nil, "\(directory.read("broker.log"))")
        // The event is announced only once the flag is stored: none yet.
        #expect(try client.nextEvent("VFIO_PCI_ERROR", timeout: 0.2) == nil)
        let window = Deadline.now() - errorAt
        broker?.kill()
        broker = nil
        #expect(window < 2, "killed \(window) s after the error: the busy timeout may have run out")
        locker.kill(signal: SIGKILL)
        // Killed while the write still waited: it neither landed nor failed.
        #expect(try store.device(vm: "vm1", id: "dev0")?.state.linkError == false)
        #expect(!directory.read("broker.log").contains("cannot store link-error flag"), "\(directory.read("broker.log"))")
        #expect(try direct.execute("query-status")["return"]?["status"]?.string == "paused")
        #expect(client.waitForClose(timeout: 5))

        broker = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
        client = try QMPClient(path: socket)
        try client.negotiate()
        // The catch-up reports the error and persists the flag before announcing it.
        let event = try #require(try Self.replayedError(client), "\(directory.read("broker.log"))")
        #expect(event["data"]?["severity"]?.string == "fatal")
        #expect(event["data"]?["link-error"]?.bool == true)
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["link-error"]?.bool == true)
        #expect(try store.device(vm: "vm1", id: "dev0")?.state.linkError == true)
        #expect(try direct.execute("query-status")["return"]?["status"]?.string == "paused")

        // An operator resumes the VM; the guest then resets the flagged link and is stopped.
        _ = try client.execute("cont")
        #expect(try direct.nextEvent("RESUME") != nil)
        try waitForFirmwareToNumberDev0(direct)
        try waitUntilTracing(socket: socket)
        try qtest.secondaryBusReset(slot: 0x1C)
        let reset = try client.nextEvent("VFIO_LINK_RESET")
        #expect(reset?["data"]?["link-error"]?.bool == true, "\(directory.read("broker.log"))")
        #expect(reset?["data"]?["action"]?.string == "stop", "\(directory.read("broker.log"))")
        #expect(try direct.nextEvent("STOP") != nil)
        #expect(try direct.execute("query-status")["return"]?["status"]?.string == "paused")
        _ = broker
    }

    /// The first `VFIO_PCI_ERROR` in the replay ring, waited for: reported at attach,
    /// possibly before this client connected.
    static func replayedError(_ client: QMPClient) throws -> JSON? {
        let deadline = Deadline(after: 10)
        while !deadline.passed {
            let events = try client.execute("query-broker-events", arguments: .object(["after": .integer(0)]))["return"]?["events"]
            if let error = events?.elements.first(where: { $0["event"]?.string == "VFIO_PCI_ERROR" }) { return error }
            usleep(20_000)
        }
        return nil
    }
}
