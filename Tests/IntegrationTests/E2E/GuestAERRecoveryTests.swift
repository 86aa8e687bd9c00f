import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// End to end with a real Linux guest doing its own AER recovery: host errors arrive as in
/// production (AER counters + eventfd), the broker forwards them into the guest, the
/// guest kernel's AER driver handles them, and a fatal error's link reset stops the VM.
@Suite(.serialized) struct E2E {
    @Test(.timeLimit(.minutes(10))) func realGuestRecoversFromNonFatalAndIsStoppedOnFatalLinkReset() throws {
        try GuestMachine.build()
        let directory = try TemporaryDirectory()
        let boot = Deadline.now()
        let guest = try GuestMachine(in: directory)
        let sysfs = FakeSysfsTree(in: directory)
        let root = sysfs.root
        let broker = try BrokerInstance(upstream: guest.qmpSocket, in: directory, stateDirectory: directory.path) {
            $0.recovery.sysfsRoot = root
            $0.recovery.pollMilliseconds = 0
            // e1000e cannot report AER in QEMU 7.2: forward at the root port above it (SPEC 9).
            var device = VFIORecoverySettings.DeviceConfiguration(id: "nic0", host: sysfs.host)
            device.injectAt = "rp1"
            $0.recovery.devices = [device]
        }
        let client = try broker.client()
        try waitUntilTracing(socket: broker.socketPath)
        try guest.waitForConsole("GUEST-READY", timeout: 120)
        print("e2e: guest boot to GUEST-READY \(Int((Deadline.now() - boot) * 1000)) ms")
        let events = try EventFDPair(client)

        // Non-fatal: the guest's AER driver recovers the device; the VM keeps running.
        sysfs.set(correctable: [:], nonFatal: ["CmpltTO": 1], fatal: [:])
        var injected = Deadline.now()
        events.signalNonFatal()
        let nonFatal = try #require(try client.nextEvent("VFIO_PCI_ERROR", timeout: 10))
        #expect(nonFatal["data"]?["severity"]?.string == "non-fatal")
        #expect(nonFatal["data"]?["action"]?.string == "forward")
        #expect(nonFatal["data"]?["note"]?.string == "injected at rp1")
        try guest.waitForConsole("AER: Uncorrected (Non-Fatal) error message received from 0000:00:1d.0", timeout: 30)
        print("e2e: non-fatal injection → guest log \(Int((Deadline.now() - injected) * 1000)) ms")
        try guest.waitForConsole("device recovery successful", timeout: 30)
        #expect(try client.nextEvent("STOP", timeout: 0.5) == nil)
        #expect(try client.execute("query-status")["return"]?["status"]?.string == "running")

        // Fatal: the guest resets the link (SBR on rp1); the flag is set, so the broker stops the VM.
        sysfs.set(correctable: [:], nonFatal: ["CmpltTO": 1], fatal: ["DLP": 1])
        injected = Deadline.now()
        events.signalFatal()
        let fatal = try #require(try client.nextEvent("VFIO_PCI_ERROR", timeout: 10))
        #expect(fatal["data"]?["severity"]?.string == "fatal")
        #expect(fatal["data"]?["link-error"]?.bool == true)
        let reset = try client.nextEvent("VFIO_LINK_RESET", timeout: 30)
        let stop = try client.nextEvent("STOP", timeout: 10)
        #expect(reset?["data"]?["action"]?.string == "stop", "serial:\n\(GuestMachine.tail(guest.serial))")
        #expect(reset?["data"]?["device"]?.string == "nic0")
        #expect(stop != nil)
        print("e2e: fatal injection → STOP \(Int((Deadline.now() - injected) * 1000)) ms; SBR → STOP "
              + "\((stop?.eventMicroseconds ?? 0) - (reset?.eventMicroseconds ?? 0)) µs (event timestamps)")
        #expect(guest.consoleCount("Uncorrected (Fatal) error message received") >= 1)
        #expect(try client.execute("query-status")["return"]?["status"]?.string == "paused")

        // A reboot with the flag still set (the host has not recovered) is not a link reset:
        // the VM is not stopped, and the flag stays, as the guest never finished its reset.
        _ = try client.execute("system_reset")
        #expect(try client.nextEvent("RESET", timeout: 10) != nil)
        _ = try client.execute("cont")
        try guest.waitForConsole("GUEST-READY", occurrence: 2, timeout: 120)
        #expect(try client.nextEvent("VFIO_LINK_RESET", timeout: 1) == nil)
        #expect(try client.nextEvent("STOP", timeout: 0.1) == nil)
        #expect(try client.execute("query-status")["return"]?["status"]?.string == "running")
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["link-error"]?.bool == true)
    }
}

/// A fatal and a non-fatal eventfd for `nic0`, passed to the broker with SCM_RIGHTS.
struct EventFDPair {
    let fatal: Int32
    let nonFatal: Int32

    init(_ client: QMPClient) throws {
        fatal = makeEventFD()
        nonFatal = makeEventFD()
        for (fd, severity) in [(fatal, "fatal"), (nonFatal, "non-fatal")] {
            let reply = try client.execute("vfio-eventfd-add", arguments: .object([
                "device": .string("nic0"), "severity": .string(severity)]), fds: [dup(fd)])
            guard reply["return"] != nil else { throw QMPClient.Failure("vfio-eventfd-add: \(reply)") }
        }
    }

    func signalFatal() { signal(fatal) }
    func signalNonFatal() { signal(nonFatal) }
}
