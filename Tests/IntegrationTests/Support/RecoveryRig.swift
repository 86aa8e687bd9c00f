import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import VFIOWatch

/// Everything the recovery tests need: a real QEMU with a qtest socket (dev0 behind the
/// root port at 00:1c.0), a fake host sysfs tree, the broker with dev0 watched, a
/// negotiated client, and a fatal and a non-fatal eventfd attached through SCM_RIGHTS.
final class RecoveryRig {
    let directory = TemporaryDirectory.forTest()
    let qemu: QEMUInstance
    let qtest: QTestConnection
    let sysfs: FakeSysfsTree
    var broker: BrokerInstance?
    var client: QMPClient!
    var fatalFD: Int32 = -1
    var nonFatalFD: Int32 = -1
    private var fatalCount = 0
    private var nonFatalCount = 0

    static let rootPortSlot: UInt8 = 0x1C

    /// How often the broker re-checks the watch (`link-reset-check-ms`).
    let checkMilliseconds: Int

    init(policy: String = "forward", autoCont: Bool = false, running: Bool = true, directMonitor: Bool = false,
         build: QEMUBuild = .debian7_2, checkMilliseconds: Int = 2000) throws {
        self.checkMilliseconds = checkMilliseconds
        let qtestPath = directory.file("qtest.sock")
        qemu = try QEMUInstance(in: directory, build: build, directMonitor: directMonitor) {
            $0.qtestSocket = qtestPath
            $0.extra += ["-qtest-log", "none"]
        }
        qtest = try QTestConnection(path: qtestPath)
        try qtest.enableECAM()  // while paused: guest-side writes then never race the firmware
        sysfs = FakeSysfsTree(in: directory)
        try startBroker(policy: policy, autoCont: autoCont)
        if running {
            _ = try client.execute("cont")
            _ = try client.nextEvent("RESUME")
        }
    }

    func startBroker(policy: String = "forward", autoCont: Bool = false) throws {
        let root = sysfs.root
        let host = sysfs.host
        let checkMilliseconds = checkMilliseconds
        broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory, stateDirectory: directory.path) {
            $0.linkResetCheckMilliseconds = checkMilliseconds
            $0.recovery.sysfsRoot = root
            $0.recovery.pollMilliseconds = 0
            var device = VFIORecoverySettings.DeviceConfiguration(id: "dev0", host: host)
            device.policy.mode = .init(rawValue: policy)!
            device.autoCont = autoCont
            $0.recovery.devices = [device]
        }
        client = try broker!.client()
        fatalFD = try attachEventFD("fatal")
        nonFatalFD = try attachEventFD("non-fatal")
        try waitUntilTracing()
    }

    private func attachEventFD(_ severity: String) throws -> Int32 {
        let fd = makeEventFD()
        let copy = dup(fd)
        let reply = try client.execute("vfio-eventfd-add", arguments: .object([
            "device": .string("dev0"), "severity": .string(severity)]), fds: [copy])
        close(copy)
        guard reply["return"] != nil else { throw QMPClient.Failure("vfio-eventfd-add: \(reply)") }
        return fd
    }

    /// Tracing is switched on asynchronously at attach; `query-broker` says when it is.
    func waitUntilTracing() throws {
        try IntegrationTests.waitUntilTracing(socket: broker!.socketPath)
    }

    /// The host sees a fatal DLP (counter bump plus eventfd signal).
    func hostFatalError() {
        fatalCount += 1
        sysfs.set(correctable: [:], nonFatal: ["CmpltTO": nonFatalCount], fatal: ["DLP": fatalCount])
        signal(fatalFD)
    }

    func hostNonFatalError() {
        nonFatalCount += 1
        sysfs.set(correctable: [:], nonFatal: ["CmpltTO": nonFatalCount], fatal: ["DLP": fatalCount])
        signal(nonFatalFD)
    }

    /// The guest sets (and releases) Secondary Bus Reset on the root port above dev0.
    func guestLinkReset() throws { try qtest.secondaryBusReset(slot: Self.rootPortSlot) }

    func status() throws -> String? { try client.execute("query-status")["return"]?["status"]?.string }

    func device() throws -> JSON? { try client.execute("query-vfio-devices")["return"]?[0] }

    /// A uevent as the kernel sends it when host AER recovery of the device succeeded.
    func hostRecovered() {
        broker!.broker.deliverUEvent(RecoveryDemo.recoveryUEvent(host: sysfs.host))
    }

    /// AER status registers of dev0 as the guest would read them (ECAM via qtest), after
    /// giving rp0 bus 1 as firmware would.
    func aerStatus() throws -> (uncorrectable: UInt32, correctable: UInt32) {
        try qtest.ecamWrite(bus: 0, slot: Self.rootPortSlot, function: 0, offset: 0x18, value: 0x0001_0100, width: 4)
        let device = qtest.ecamAddress(bus: 1, slot: 0, function: 0, offset: 0)
        var offset: UInt64 = 0x100
        while offset != 0 {
            let header = try qtest.readLong(device + offset)
            if header & 0xFFFF == 0x0001 {
                return (try qtest.readLong(device + offset + 4), try qtest.readLong(device + offset + 0x10))
            }
            offset = UInt64(header >> 20)
        }
        throw QMPClient.Failure("dev0 has no AER capability")
    }
}

/// Polls `query-broker` until the VM's guest link resets are watched.
func waitUntilTracing(socket: String) throws {
    let client = try QMPClient(path: socket)
    try client.negotiate()
    try client.waitForLinkResetWatch(timeout: 10)
}
