import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Against a real QEMU 7.2: no client of the broker can switch the
/// link-reset watch off, and a change made behind its back (QEMU's own second monitor)
/// is announced, shown, and undone.
@Suite(.serialized) struct LinkResetWatchGuardTests {
    private func hmp(_ client: QMPClient, _ line: String) throws -> JSON {
        try client.execute("human-monitor-command", arguments: .object(["command-line": .string(line)]))
    }

    @Test(arguments: QEMUBuild.all) func commandsThatWouldEndTheWatchAreRefusedAndTheFlaggedResetStillStops(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        let client = rig.client!
        let refusals = [
            try client.execute("trace-event-set-state", arguments: .object([
                "name": .string("pci_cfg_write"), "enable": .bool(false)])),
            try client.execute("trace-event-set-state", arguments: .object(["name": .string("*"), "enable": .bool(false)])),
            try hmp(client, "logfile \(rig.directory.file("elsewhere.log"))"),
            try hmp(client, "trace-event pci_cfg_write off"),
            try hmp(client, "log trace:-pci*"),
        ]
        for reply in refusals {
            #expect(reply["error"]?["class"]?.string == "GenericError", "\(reply)")
        }
        #expect(refusals[0]["error"]?["desc"]?.string
            == "Trace event 'pci_cfg_write' is watched by qmp-broker for guest link resets and cannot be disabled while it watches")
        // QEMU really still traces into the broker's file, and nothing was redirected.
        let state = try client.execute("trace-event-get-state", arguments: .object(["name": .string("pci_cfg_write")]))
        #expect(state["return"]?[0]?["state"]?.string == "enabled")
        #expect(access(rig.directory.file("elsewhere.log"), F_OK) != 0)
        #expect(try rig.watchIsOn(client) == true)
        // Harmless neighbours still go through.
        #expect(try hmp(client, "log none")["return"]?.string == "")
        #expect(try client.execute("trace-event-set-state", arguments: .object([
            "name": .string("pci_cfg_read"), "enable": .bool(false)]))["return"] != nil)

        rig.hostFatalError()
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        try rig.guestLinkReset()
        #expect(try client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop")
        #expect(try client.nextEvent("STOP") != nil)
    }

    @Test(arguments: QEMUBuild.all) func aDisabledEventIsAnnouncedShownAndReasserted(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(directMonitor: true, build: build)
        let client = rig.client!
        rig.hostFatalError()
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        #expect(try rig.device()?["link-reset-watch"]?.bool == true)

        // A management tool on QEMU's own monitor, which the broker cannot refuse.
        let direct = try rig.qemu.directClient()
        #expect(try direct.execute("trace-event-set-state", arguments: .object([
            "name": .string("pci_cfg_write"), "enable": .bool(false)]))["return"] != nil)
        // A forwarded trace command makes the broker look at once; the periodic check would too.
        _ = try client.execute("trace-event-set-state", arguments: .object(["name": .string("pci_cfg_read"), "enable": .bool(true)]))
        let lost = try #require(try client.nextWatchEvent(active: false, timeout: 10))
        #expect(lost["data"]?["reason"]?.string == "trace events disabled in QEMU: pci_cfg_write")
        let back = try #require(try client.nextWatchEvent(active: true, timeout: 10))
        #expect(back["data"]?["reason"]?.string == "attached")
        let state = try direct.execute("trace-event-get-state", arguments: .object(["name": .string("pci_cfg_write")]))
        #expect(state["return"]?[0]?["state"]?.string == "enabled")

        try rig.guestLinkReset()
        let reset = try client.nextEvent("VFIO_LINK_RESET")
        let diagnostics = reset == nil ? try rig.diagnostics(client) : ""
        #expect(reset?["data"]?["action"]?.string == "stop", "\(diagnostics)")
        #expect(try client.nextEvent("STOP") != nil)
    }

    @Test(arguments: QEMUBuild.all) func aVMMThatGoesAwayIsAnnouncedAndShownPerDevice(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        let client = rig.client!
        // A plain client reads EOF when the VMM goes, as from QEMU; this one asks to stay.
        #expect(try client.execute("broker-stay-connected")["return"] != nil)
        rig.hostFatalError()
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        rig.qemu.kill()
        let lost = try #require(try client.nextWatchEvent(active: false, timeout: 10))
        #expect(lost["data"]?["reason"]?.string == "VMM disconnected")
        let device = try rig.device()
        #expect(device?["link-error"]?.bool == true)
        #expect(device?["link-reset-watch"]?.bool == false)
        let vm = try client.execute("query-broker")["return"]?["vms"]?[0]
        #expect(vm?["link-reset-watch"]?.bool == false)
        #expect(vm?["link-reset-watch-reason"]?.string == "VMM disconnected")
    }

    /// The trace log renamed away (or replaced) under the running broker: announced,
    /// opened afresh, QEMU put back on it, and the flagged reset still stops the VM.
    @Test(arguments: QEMUBuild.all) func aReplacedTraceLogIsAnnouncedAndReattached(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        let client = rig.client!
        rig.hostFatalError()
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        let path = rig.directory.file("vm1.trace.log")
        #expect(rename(path, rig.directory.file("moved.trace.log")) == 0)
        let lost = try #require(try client.nextWatchEvent(active: false, timeout: 10))
        #expect(lost["data"]?["reason"]?.string == "the trace log was removed or replaced")
        #expect(try client.nextWatchEvent(active: true, timeout: 10) != nil)
        try rig.guestLinkReset()
        #expect(try client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop")
        #expect(try client.nextEvent("STOP") != nil)
    }

    /// QEMU's own monitor moves the log elsewhere: the next check puts it back.
    @Test(arguments: QEMUBuild.all) func aLogRedirectBehindTheBrokersBackLastsOneCheck(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(directMonitor: true, build: build)
        let client = rig.client!
        rig.hostFatalError()
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        let direct = try rig.qemu.directClient()
        let elsewhere = rig.directory.file("elsewhere.log")
        #expect(try hmp(direct, "logfile \(elsewhere)")["return"]?.string == "")
        // A forwarded trace command triggers the check at once.
        _ = try client.execute("trace-event-set-state", arguments: .object(["name": .string("pci_cfg_read"), "enable": .bool(true)]))
        _ = try client.execute("query-status")
        // Guest config writes that change nothing (bridge control 0 on rp0) until one lands in our file.
        let size = rig.directory.read("vm1.trace.log").utf8.count
        let deadline = Deadline(after: 5)
        var backOnOurs = false
        while !backOnOurs, !deadline.passed {
            try rig.qtest.ecamWrite(bus: 0, slot: RecoveryRig.rootPortSlot, function: 0, offset: 0x3E, value: 0, width: 2)
            usleep(50_000)
            backOnOurs = rig.directory.read("vm1.trace.log").utf8.count > size
        }
        #expect(backOnOurs)
        try rig.guestLinkReset()
        #expect(try client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop")
    }
}
