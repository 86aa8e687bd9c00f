import Glibc
import Logging
import QMPBroker
import Synchronization
import VFIOWatch

/// `qmp-broker demo`: the whole recovery story against a real QEMU in one run. A PCIe root
/// port with an AER-capable device stands in for the assigned device; a fake host sysfs
/// tree and real eventfds play the host; QEMU's qtest socket plays the guest's link reset;
/// a synthetic uevent plays the host's recovery. Everything lives in a temporary directory
/// that `cleanUp()` removes (also on Ctrl-C).
package final class RecoveryDemo: Sendable {
    package struct Options: Sendable {
        package var json = false
        package var colour = false
        package init(json: Bool = false, colour: Bool = false) {
            self.json = json
            self.colour = colour
        }
    }

    private let options: Options
    private let state = Mutex<(directory: TemporaryDirectory?, qemu: ChildProcess?, broker: Broker?)>((nil, nil, nil))

    package init(options: Options) { self.options = options }

    /// One step of the drill: what to do, and which events must follow (in any order).
    private struct Drill {
        let title: String
        let expected: [String]
        let act: () throws -> Void
    }

    /// Runs the drill, printing the timeline; returns whether every expectation was met.
    package func run(print emit: @escaping (String) -> Void) throws -> Bool {
        let temporary = try TemporaryDirectory(prefix: "qmp-broker-demo")
        let directory = temporary.path
        state.withLock { $0.directory = temporary }
        defer { cleanUp() }
        let qmpSocket = "\(directory)/qemu.qmp"
        let qtestSocket = "\(directory)/qtest.sock"
        var commandLine = QEMUCommandLine(qmpSocket: qmpSocket, qtestSocket: qtestSocket)
        commandLine.extra += ["-qtest-log", "none"]
        let qemu = try ChildProcess(commandLine.arguments, outputPath: "\(directory)/qemu.log")
        state.withLock { $0.qemu = qemu }
        let qtest = try QTestConnection(path: qtestSocket)
        try qtest.enableECAM()  // before the firmware runs: the guest-side SBR then goes through ECAM
        let sysfs = FakeSysfsTree(under: directory)

        var vm = VMConfiguration(name: "demo", upstreamPath: qmpSocket, socketPath: "\(directory)/demo.qmp")
        vm.recovery.sysfsRoot = sysfs.root
        vm.recovery.pollMilliseconds = 0
        var device = VFIORecoverySettings.DeviceConfiguration(id: commandLine.deviceID, host: sysfs.host)
        device.policy.mode = .forward
        device.autoCont = true
        vm.recovery.devices = [device]
        var logger = Logger(label: "qmp-broker.demo")
        logger.logLevel = .critical
        let broker = try Broker(vms: [vm], stateDirectory: directory, logger: logger)
        state.withLock { $0.broker = broker }
        try broker.start()

        let client = try QMPClient(path: vm.socketPath)
        try client.negotiate()
        let version = client.greeting?["QMP"]?["version"]?["qemu"]
        let timeline = Timeline(options: options, emit: emit)
        if !options.json {
            emit("qmp-broker demo: QEMU \(version?["major"]?.integer ?? 0).\(version?["minor"]?.integer ?? 0)."
                 + "\(version?["micro"]?.integer ?? 0) (q35, TCG). Device \(commandLine.deviceID) (\(commandLine.deviceModel))"
                 + " behind root port 00:1c.0 stands in for the VFIO device at host \(sysfs.host); policy forward, auto-cont.")
            timeline.header()
        }
        try client.waitForLinkResetWatch()
        _ = try client.execute("cont")
        _ = try client.nextEvent("RESUME")

        let fatalFD = try attachEventFD(client, severity: "fatal")
        let nonFatalFD = try attachEventFD(client, severity: "non-fatal")
        defer { close(fatalFD); close(nonFatalFD) }
        var counts = (correctable: 0, nonFatal: 0, fatal: 0)
        func bump(_ update: () -> Void) {
            update()
            sysfs.set(correctable: ["RxErr": counts.correctable], nonFatal: ["CmpltTO": counts.nonFatal],
                      fatal: ["DLP": counts.fatal])
        }

        let drills = [
            Drill(title: "host: correctable RxErr", expected: ["VFIO_PCI_ERROR"]) {
                bump { counts.correctable += 1 }
                try EventFD.signal(nonFatalFD)
            },
            Drill(title: "host: non-fatal CmpltTO (a lost transaction)", expected: ["VFIO_PCI_ERROR"]) {
                bump { counts.nonFatal += 1 }
                try EventFD.signal(nonFatalFD)
            },
            Drill(title: "host: fatal DLP (link flagged)", expected: ["VFIO_PCI_ERROR"]) {
                bump { counts.fatal += 1 }
                try EventFD.signal(fatalFD)
            },
            Drill(title: "guest: Secondary Bus Reset on root port 00:1c.0", expected: ["VFIO_LINK_RESET", "STOP"]) {
                try qtest.secondaryBusReset(slot: 0x1C)
            },
            // The flag outlives host recovery (the kernel reset the device under the guest);
            // auto-cont resumes the VM, and the guest, finishing its link reset, clears it.
            Drill(title: "host: AER recovery succeeded (uevent)",
                  expected: ["VFIO_HOST_RECOVERY", "RESUME", "VFIO_LINK_ERROR_CLEARED"]) {
                broker.deliverUEvent(Self.recoveryUEvent(host: sysfs.host))
            },
        ]
        var passed = true
        for drill in drills {
            timeline.step(drill.title)
            try drill.act()
            for name in drill.expected {
                guard let event = try client.nextEvent(name, timeout: 10) else {
                    timeline.missing(name)
                    passed = false
                    continue
                }
                timeline.event(event)
            }
        }
        let status = try client.execute("query-status")["return"]?["status"]?.string ?? "?"
        let flag = try client.execute("query-vfio-devices")["return"]?[0]?["link-error"]?.bool ?? true
        passed = passed && status == "running" && !flag
        timeline.verdict(passed, status: status, flag: flag)
        return passed
    }

    /// Stops QEMU and the broker and removes the temporary directory; safe to call twice,
    /// from two threads (Ctrl-C and the drill ending): the second waits for the first.
    package func cleanUp() {
        state.withLock { state in
            state.qemu?.kill(signal: SIGKILL)
            state.broker?.stop()
            state.directory?.remove()
            state = (nil, nil, nil)
        }
    }

    private func attachEventFD(_ client: QMPClient, severity: String) throws -> Int32 {
        let fd = try EventFD.makeEventFD()
        let reply = try client.execute("vfio-eventfd-add", arguments: .object([
            "device": .string("dev0"), "severity": .string(severity)]), fds: [dup(fd)])
        guard reply["return"] != nil else { throw QMPClient.Failure("vfio-eventfd-add: \(reply)") }
        return fd
    }

    /// The uevent the kernel's AER core sends for `host` (drivers/pci/pci-driver.c
    /// `pci_uevent_ers`): by default, that its recovery succeeded.
    package static func recoveryUEvent(host: String, event: String = "SUCCESSFUL_RECOVERY", online: Bool = true) -> [UInt8] {
        let devpath = "/devices/pci0000:00/0000:00:1c.0/\(host)"
        return ["change@\(devpath)", "ACTION=change", "DEVPATH=\(devpath)", "SUBSYSTEM=pci",
                "ERROR_EVENT=\(event)", "DEVICE_ONLINE=\(online ? 1 : 0)", "DRIVER=vfio-pci", "PCI_SLOT_NAME=\(host)", "SEQNUM=1"]
            .flatMap { Array($0.utf8) + [0] }
    }
}
