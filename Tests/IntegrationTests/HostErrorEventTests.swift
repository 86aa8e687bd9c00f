import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Host errors through real eventfds passed by SCM_RIGHTS and a fake sysfs tree, with a
/// real QEMU attached: every error becomes one VFIO_PCI_ERROR at every client.
@Suite(.serialized) struct HostErrorEventTests {
    let directory = TemporaryDirectory.forTest()
    let qemu: QEMUInstance
    let sysfs: FakeSysfsTree
    let broker: BrokerInstance

    init() throws {
        qemu = try QEMUInstance(in: directory)
        sysfs = FakeSysfsTree(in: directory)
        let root = sysfs.root
        broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory) {
            $0.recovery.sysfsRoot = root
            $0.recovery.pollMilliseconds = 0  // only eventfds report here: no race with a poll
        }
    }

    /// Registers `dev0` (policy report: nothing but events) and an eventfd for it; returns the fd.
    func watch(_ client: QMPClient, severity: String = "any") throws -> Int32 {
        let added = try client.execute("vfio-device-add", arguments: .object([
            "id": .string("dev0"), "host": .string(sysfs.host), "policy": .string("report"),
        ]))
        #expect(added["return"] != nil, "\(added)")
        let fd = makeEventFD()
        let sent = dup(fd)
        let attached = try client.execute("vfio-eventfd-add", arguments: .object([
            "device": .string("dev0"), "severity": .string(severity),
        ]), fds: [sent])
        close(sent)
        #expect(attached["return"] != nil, "\(attached)")
        return fd
    }

    @Test(arguments: [
        ("fatal", "DLP", "aer_dev_fatal"),
        ("non-fatal", "CmpltTO", "aer_dev_nonfatal"),
        ("correctable", "RxErr", "aer_dev_correctable"),
    ])
    func counterGrowthPlusSignalIsOneEventAtEveryClient(severity: String, name: String, file: String) throws {
        let first = try broker.client()
        let second = try broker.client()
        let fd = try watch(first)
        defer { close(fd) }
        switch severity {
        case "fatal": sysfs.set(correctable: [:], nonFatal: [:], fatal: [name: 1])
        case "non-fatal": sysfs.set(correctable: [:], nonFatal: [name: 1], fatal: [:])
        default: sysfs.set(correctable: [name: 1], nonFatal: [:], fatal: [:])
        }
        signal(fd)
        for client in [first, second] {
            let event = try #require(try client.nextEvent("VFIO_PCI_ERROR"))
            let data = try #require(event["data"])
            #expect(data["device"]?.string == "dev0")
            #expect(data["host"]?.string == "0000:3b:00.0")
            #expect(data["severity"]?.string == severity)
            #expect(data["errors"] == .strings([name]))
            #expect(data["source"]?.string == "eventfd")
            #expect(data["count"]?.integer == 1)
            #expect(data["link-error"]?.bool == (severity == "fatal"))
            #expect(data["action"]?.string == "none")
            #expect(try client.nextEvent("VFIO_PCI_ERROR", timeout: 0.2) == nil)
        }
    }

    @Test func coalescedSignalsAreCountedNotLost() throws {
        let client = try broker.client()
        let fd = try watch(client, severity: "fatal")
        defer { close(fd) }
        sysfs.set(correctable: [:], nonFatal: [:], fatal: ["DLP": 50])
        signal(fd, adding: 50)  // fifty signals the broker reads as one
        let event = try #require(try client.nextEvent("VFIO_PCI_ERROR"))
        #expect(event["data"]?["count"]?.integer == 50)
        #expect(try client.nextEvent("VFIO_PCI_ERROR", timeout: 0.2) == nil)
        let devices = try client.execute("query-vfio-devices")
        #expect(devices["return"]?[0]?["counters"]?["fatal"]?.integer == 50)
        #expect(devices["return"]?[0]?["link-error"]?.bool == true)
    }

    @Test func deviceWithoutAERCountersReportsTheFdsSeverity() throws {
        let client = try broker.client()
        sysfs.remove("aer_dev_fatal")
        sysfs.remove("aer_dev_nonfatal")
        sysfs.remove("aer_dev_correctable")
        let fd = try watch(client, severity: "non-fatal")
        defer { close(fd) }
        signal(fd)
        let event = try #require(try client.nextEvent("VFIO_PCI_ERROR"))
        #expect(event["data"]?["severity"]?.string == "non-fatal")
        #expect(event["data"]?["errors"] == .strings([]))
    }

    @Test func anAnyEventfdWithNothingCountedIsNeverCalledFatal() throws {
        // The real kernel counts a port's error at the port: with only the device's own
        // files read, the change was empty and was reported as fatal, setting the flag.
        let client = try broker.client()
        let fd = try watch(client, severity: "any")
        defer { close(fd) }
        signal(fd)
        let event = try #require(try client.nextEvent("VFIO_PCI_ERROR"))
        #expect(event["data"]?["severity"]?.string == "non-fatal")
        #expect(event["data"]?["link-error"]?.bool == false)
        #expect(event["data"]?["note"]?.string?.contains("severity unknown") == true)
        // The same error announced again right away (eventfd and uevent) is not reported twice.
        sysfs.set(correctable: [:], nonFatal: ["CmpltTO": 1], fatal: [:])
        signal(fd)
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["errors"] == .strings(["CmpltTO"]))
        signal(fd)
        #expect(try client.nextEvent("VFIO_PCI_ERROR", timeout: 0.5) == nil)
    }

    @Test func vanishingAndGarbageCounterFilesDoNotStopTheBroker() throws {
        let client = try broker.client()
        let fd = try watch(client, severity: "fatal")
        defer { close(fd) }
        sysfs.remove("aer_dev_fatal")
        signal(fd)
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["severity"]?.string == "fatal")
        sysfs.writeRaw("aer_dev_fatal", "DLP one\n\u{1}\u{2}garbage\nTOTAL_ERR_FATAL x\n")
        signal(fd)
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["severity"]?.string == "fatal")
        #expect(try client.execute("query-status")["return"] != nil)
    }

    @Test func badInputGetsClearErrors() throws {
        let client = try broker.client()
        func error(_ command: String, _ arguments: JSON, fds: [Int32] = []) throws -> String? {
            try client.execute(command, arguments: arguments, fds: fds)["error"]?["desc"]?.string
        }
        #expect(try error("vfio-device-add", .object(["id": .string("d"), "host": .string("3b:00.0")]))
            == "Parameter 'host' expects a PCI address like 0000:3b:00.0")
        #expect(try error("vfio-device-add", .object(["id": .string("d")])) == "Parameter 'host' is missing")
        #expect(try error("vfio-device-add", .object(["id": .integer(1), "host": .string("0000:3b:00.0")]))
            == "Invalid parameter type for 'id', expected: string")
        #expect(try error("vfio-device-add", .object(["id": .string("d"), "host": .string("0000:3b:00.0"),
                                                       "policy": .string("pray")]))
            == "Parameter 'policy' does not accept value 'pray'")
        #expect(try error("vfio-eventfd-add", .object(["device": .string("nope"), "severity": .string("fatal")]),
                          fds: [makeEventFD()]) == "Device 'nope' is not a watched VFIO device")
        _ = try client.execute("vfio-device-add", arguments: .object(["id": .string("d"), "host": .string("0000:3b:00.0")]))
        var ends: [Int32] = [0, 0]
        _ = pipe(&ends)
        defer { close(ends[0]) }
        #expect(try error("vfio-eventfd-add", .object(["device": .string("d"), "severity": .string("fatal")]),
                          fds: [ends[1]]) == "File descriptor is not an eventfd")
        let file = open(directory.file("regular"), O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        #expect(try error("vfio-eventfd-add", .object(["device": .string("d"), "severity": .string("fatal")]),
                          fds: [file]) == "File descriptor is not an eventfd")
        #expect(try error("vfio-eventfd-add", .object(["device": .string("d"), "severity": .string("fatal")]))
            == "No file descriptor supplied via SCM_RIGHTS")
        #expect(try error("x-vfio-inject-error", .object(["device": .string("d"), "severity": .string("fatal")]))?
            .hasPrefix("x-vfio-inject-error is disabled") == true)
        // The connection and the broker keep working.
        #expect(try client.execute("query-vfio-devices")["return"]?.count == 1)
    }

    @Test func eventfdPassedEarlierWithGetfdIsTakenByName() throws {
        let client = try broker.client()
        _ = try client.execute("vfio-device-add", arguments: .object(["id": .string("dev0"), "host": .string(sysfs.host)]))
        let fd = makeEventFD()
        defer { close(fd) }
        let copy = dup(fd)
        #expect(try client.execute("getfd", arguments: .object(["fdname": .string("err0")]), fds: [copy])["return"] != nil)
        close(copy)
        let attached = try client.execute("vfio-eventfd-add", arguments: .object([
            "device": .string("dev0"), "severity": .string("non-fatal"), "fdname": .string("err0"),
        ]))
        #expect(attached["return"] != nil, "\(attached)")
        signal(fd)
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["severity"]?.string == "non-fatal")
    }

    @Test func pythonClientPassesAnEventfdWithSCMRights() throws {
        let output = directory.file("python-vfio.out")
        let python = try ChildProcess(["python3", ThirdPartyClientTests.compatScript, broker.socketPath,
                                       "--vfio", sysfs.deviceDirectory], outputPath: output)
        let status = python.wait(timeout: 60)
        let text = directory.read("python-vfio.out")
        #expect(status == 0, "\(text)")
        let result = try JSON.parse(String(text.split(separator: "\n").last ?? ""))
        #expect(result["vfio_event"]?["severity"]?.string == "fatal")
        #expect(result["vfio_event"]?["errors"] == .strings(["DLP"]))
        #expect(result["vfio_event"]?["source"]?.string == "eventfd")
    }
}
