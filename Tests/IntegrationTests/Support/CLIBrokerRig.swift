import BrokerTesting
import Glibc
import QMPBroker
import QMPWire

/// The built `qmp-broker run` binary in front of a real QEMU (qtest, ECAM on, dev0 behind
/// rp0 at 00:1c.0) with a fake sysfs tree and `--allow-inject`, for what needs a separate
/// process: SIGKILL at any point, restarts, the log a user reads.
final class CLIBrokerRig {
    let directory = TemporaryDirectory.forTest()
    let qemu: QEMUInstance
    let qtest: QTestConnection
    let sysfs: FakeSysfsTree
    let stateDirectory: String
    private(set) var broker: BrokerProcess?
    var socket: String { directory.file("vm1.qmp") }
    var logPath: String { directory.file("broker.log") }

    init(stateDirectory: String? = nil, build: QEMUBuild = .debian7_2, directMonitor: Bool = false,
         qemuArguments: [String] = []) throws {
        let qtestPath = directory.file("qtest.sock")
        qemu = try QEMUInstance(in: directory, build: build, directMonitor: directMonitor) {
            $0.qtestSocket = qtestPath
            $0.extra += ["-qtest-log", "none"] + qemuArguments
        }
        qtest = try QTestConnection(path: qtestPath)
        try qtest.enableECAM()
        sysfs = FakeSysfsTree(in: directory)
        self.stateDirectory = stateDirectory ?? directory.file("state")
        directory.write("broker.toml", """
            socket-dir = "\(directory.path)"
            state-dir = "\(self.stateDirectory)"
            sysfs-root = "\(sysfs.root)"
            sysfs-poll-ms = 0
            allow-inject = true

            [[vm]]
            name = "vm1"
            qmp = "\(qemu.qmpSocket)"
            """)
    }

    /// Starts the broker and returns a negotiated client once it watches for link resets.
    @discardableResult
    func start(_ extraArguments: [String] = []) throws -> QMPClient {
        let client = try startWithoutWatch(extraArguments)
        try client.waitForLinkResetWatch(timeout: 30)  // generous: 2 shared cores under load
        return client
    }

    /// Starts the broker and returns a negotiated client without waiting for the watch.
    func startWithoutWatch(_ extraArguments: [String] = []) throws -> QMPClient {
        broker = try BrokerProcess(arguments: ["run", "--config", directory.file("broker.toml")] + extraArguments,
                                   logPath: logPath)
        let deadline = Deadline(after: 10)
        while true {
            if let client = try? QMPClient(path: socket) {
                try client.negotiate()
                return client
            }
            guard !deadline.passed else { throw QMPClient.Failure("broker socket never appeared: \(log)") }
            usleep(5_000)
        }
    }

    func kill() {
        broker?.kill()
        _ = broker?.process.wait(timeout: 5)
        broker = nil
    }

    var log: String { directory.read("broker.log") }

    /// The guest sets and releases Secondary Bus Reset on rp0, above dev0.
    func guestLinkReset() throws { try qtest.secondaryBusReset(slot: 0x1C) }

    func waitForFirmwareToNumberDev0(_ client: QMPClient, timeout: Double = 20) throws {
        try IntegrationTests.waitForFirmwareToNumberDev0(client, timeout: timeout)
    }

    func add(_ client: QMPClient, id: String, host: String, policy: String = "forward", injectAt: String? = nil) throws -> JSON {
        let base: JSON = .object(["id": .string(id), "host": .string(host), "policy": .string(policy)])
        let arguments: JSON = injectAt.map { .object(["id": .string(id), "host": .string(host), "policy": .string(policy),
                                                      "inject-at": .string($0)]) } ?? base
        return try client.execute("vfio-device-add", arguments: arguments)
    }

    func inject(_ client: QMPClient, _ device: String, _ severity: String) throws -> JSON {
        try client.execute("x-vfio-inject-error", arguments: .object([
            "device": .string(device), "severity": .string(severity)]))
    }

    /// Waits (bounded) until QEMU says the VM is paused.
    func waitUntilPaused(_ client: QMPClient, timeout: Double = 10) throws -> Bool {
        let deadline = Deadline(after: timeout)
        while !deadline.passed {
            if try client.execute("query-status")["return"]?["status"]?.string == "paused" { return true }
            usleep(10_000)
        }
        return false
    }

    deinit { kill() }
}

/// After `cont`, waits (bounded) until the firmware has numbered rp0's secondary bus and
/// QEMU lists dev0 behind it: a guest link reset before that races the firmware. `client`
/// may be the broker's or QEMU's own monitor.
func waitForFirmwareToNumberDev0(_ client: QMPClient, timeout: Double = 20) throws {
    let deadline = Deadline(after: timeout)
    while !deadline.passed {
        let reply = try client.execute("query-pci")
        if String(decoding: reply.serialized(), as: UTF8.self).contains(#""qdev_id": "dev0""#) { return }
        usleep(20_000)
    }
    throw QMPClient.Failure("the firmware never numbered dev0's bus")
}
