import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Points 3–5 of the recovery design against a real QEMU 7.2: forwarding to the guest,
/// the link-error flag, and stopping the VM when the guest resets a flagged link.
@Suite(.serialized) struct RecoveryTests {
    @Test(arguments: QEMUBuild.all) func fatalErrorThenLinkResetStopsTheVM(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        rig.hostFatalError()
        let error = try #require(try rig.client.nextEvent("VFIO_PCI_ERROR"))
        #expect(error["data"]?["severity"]?.string == "fatal")
        #expect(error["data"]?["action"]?.string == "forward")
        #expect(error["data"]?["link-error"]?.bool == true)
        try rig.guestLinkReset()
        let reset = try #require(try rig.client.nextEvent("VFIO_LINK_RESET"))
        #expect(reset["data"]?["action"]?.string == "stop")
        #expect(reset["data"]?["origin"]?.string == "guest-link-reset")
        #expect(reset["data"]?["link-error"]?.bool == true)
        // No order between the two timestamps: the broker sends `stop` before it announces
        // (VFIORecovery.perform: stop never waits), so under ThreadSanitizer QEMU's STOP
        // was stamped 315 µs before VFIO_LINK_RESET. How fast is for `make bench`.
        #expect(try rig.client.nextEvent("STOP") != nil)
        #expect(try rig.status() == "paused")
        #expect(try rig.device()?["state"]?.string == "stopped")
    }

    @Test(arguments: QEMUBuild.all) func nonFatalErrorOrNoErrorThenLinkResetDoesNotStop(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        try rig.guestLinkReset()
        #expect(try rig.client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "none")
        rig.hostNonFatalError()
        #expect(try rig.client.nextEvent("VFIO_PCI_ERROR")?["data"]?["severity"]?.string == "non-fatal")
        try rig.guestLinkReset()
        let reset = try #require(try rig.client.nextEvent("VFIO_LINK_RESET"))
        #expect(reset["data"]?["action"]?.string == "none")
        #expect(reset["data"]?["link-error"]?.bool == false)
        #expect(try rig.client.nextEvent("STOP", timeout: 0.3) == nil)
        #expect(try rig.status() == "running")
    }

    @Test(arguments: QEMUBuild.all) func systemResetWithTheFlagSetIsNotALinkReset(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        rig.hostFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        _ = try rig.client.execute("system_reset")
        #expect(try rig.client.nextEvent("RESET") != nil)
        try rig.qtest.command("outb 0xcf9 0x6")  // the guest's own reboot through the reset control register
        #expect(try rig.client.nextEvent("RESET")?["data"]?["guest"]?.bool == true)
        #expect(try rig.client.nextEvent("VFIO_LINK_RESET", timeout: 0.3) == nil)
        #expect(try rig.client.nextEvent("STOP", timeout: 0.1) == nil)
        #expect(try rig.status() == "running")
        #expect(try rig.device()?["link-error"]?.bool == true)  // the host link is still suspect
    }

    @Test(arguments: QEMUBuild.all) func policyStopStopsAtOnceAndInjectsNothing(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(policy: "stop", build: build)
        rig.hostFatalError()
        let error = try #require(try rig.client.nextEvent("VFIO_PCI_ERROR"))
        #expect(error["data"]?["action"]?.string == "stop")
        #expect(try rig.client.nextEvent("STOP") != nil)
        #expect(try rig.aerStatus().uncorrectable == 0)
    }

    @Test(arguments: QEMUBuild.all) func policyReportOnlyReports(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(policy: "report", build: build)
        rig.hostFatalError()
        #expect(try rig.client.nextEvent("VFIO_PCI_ERROR")?["data"]?["action"]?.string == "none")
        try rig.guestLinkReset()
        #expect(try rig.client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "none")
        #expect(try rig.client.nextEvent("STOP", timeout: 0.3) == nil)
        let status = try rig.aerStatus()
        #expect(status.uncorrectable == 0 && status.correctable == 0)
    }

    @Test(arguments: QEMUBuild.all) func forwardedErrorsShowInTheGuestVisibleAERStatus(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        rig.sysfs.set(correctable: ["RxErr": 1], nonFatal: [:], fatal: [:])
        try rig.client.send(#"{"execute":"query-status"}"#)  // keep the pipeline busy: ordering must not matter
        _ = try rig.client.nextReply()
        signal(rig.nonFatalFD)  // counters say correctable: the counters win over the fd's tag
        let correctable = try #require(try rig.client.nextEvent("VFIO_PCI_ERROR"))
        #expect(correctable["data"]?["severity"]?.string == "correctable")
        rig.hostNonFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        rig.hostFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        _ = try rig.client.execute("query-status")  // the injections went before this reply
        let status = try rig.aerStatus()
        #expect(status.correctable & 0x1 != 0, "RxErr (bit 0) in Correctable Error Status")
        #expect(status.uncorrectable & (1 << 14) != 0, "CmpltTO (bit 14) in Uncorrectable Error Status")
        #expect(status.uncorrectable & (1 << 4) != 0, "DLP (bit 4) in Uncorrectable Error Status")
    }

    @Test(arguments: QEMUBuild.all) func autoContAfterHostRecoveryUnlessSomeoneResumedFirst(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(autoCont: true, build: build)
        rig.hostFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        try rig.guestLinkReset()
        _ = try rig.client.nextEvent("STOP")
        rig.hostRecovered()
        // Host recovery is announced but does not clear the flag; auto-cont resumes the VM
        // the broker stopped, and the guest, resuming its link reset, clears it.
        let recovery = try #require(try rig.client.nextEvent("VFIO_HOST_RECOVERY"))
        #expect(recovery["data"]?["result"]?.string == "successful")
        #expect(recovery["data"]?["link-error"]?.bool == true)
        #expect(try rig.client.nextEvent("RESUME") != nil)
        let cleared = try #require(try rig.client.nextEvent("VFIO_LINK_ERROR_CLEARED"))
        #expect(cleared["data"]?["reason"]?.string == "guest-link-reset")
        #expect(try rig.status() == "running")
        #expect(try rig.device()?["host-recovery"]?.string == "successful")

        // Again, but an operator resumes the VM first: no second cont from the broker.
        rig.hostFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        try rig.guestLinkReset()
        _ = try rig.client.nextEvent("STOP")
        _ = try rig.client.execute("cont")
        _ = try rig.client.nextEvent("RESUME")
        #expect(try rig.client.nextEvent("VFIO_LINK_ERROR_CLEARED")?["data"]?["reason"]?.string == "guest-link-reset")
        _ = try rig.client.execute("stop")
        _ = try rig.client.nextEvent("STOP")
        rig.hostRecovered()
        #expect(try rig.client.nextEvent("VFIO_HOST_RECOVERY") != nil)
        #expect(try rig.client.nextEvent("RESUME", timeout: 0.3) == nil)
        #expect(try rig.status() == "paused")
    }

    @Test(arguments: QEMUBuild.all) func beginRecoveryUEventIsAnErrorNotificationOfItsOwn(_ build: QEMUBuild) throws {
        // No eventfd fires (none handed over, none taken over): the AER core's uevent is the news.
        let rig = try RecoveryRig(build: build)
        rig.sysfs.set(correctable: [:], nonFatal: [:], fatal: ["DLP": 1])
        rig.broker!.broker.deliverUEvent(RecoveryDemo.recoveryUEvent(host: rig.sysfs.host, event: "BEGIN_RECOVERY", online: false))
        let event = try #require(try rig.client.nextEvent("VFIO_PCI_ERROR"))
        #expect(event["data"]?["source"]?.string == "uevent")
        #expect(event["data"]?["severity"]?.string == "fatal")
        #expect(event["data"]?["link-error"]?.bool == true)
        #expect(try rig.device()?["host-recovery"]?.string == "in-progress")
        rig.broker!.broker.deliverUEvent(RecoveryDemo.recoveryUEvent(host: rig.sysfs.host, event: "FAILED_RECOVERY", online: false))
        #expect(try rig.client.nextEvent("VFIO_HOST_RECOVERY")?["data"]?["result"]?.string == "failed")
        #expect(try rig.device()?["link-error"]?.bool == true)
    }

    @Test(arguments: QEMUBuild.all) func everyActionIsInTheHistoryWithItsCause(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        rig.hostFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        try rig.guestLinkReset()
        _ = try rig.client.nextEvent("STOP")
        _ = try rig.client.execute("cont")
        _ = try rig.client.nextEvent("VFIO_LINK_ERROR_CLEARED")
        rig.hostFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        _ = try rig.client.execute("vfio-link-error-clear", arguments: .object(["device": .string("dev0")]))
        _ = try rig.client.nextEvent("VFIO_LINK_ERROR_CLEARED")
        let deadline = Deadline(after: 5)
        var rows: [JSON] = []
        while rows.count < 8 && !deadline.passed {
            rows = try rig.client.execute("query-vfio-error-history")["return"]?.elements ?? []
            if rows.count < 8 { usleep(20_000) }
        }
        let kinds = rows.compactMap { $0["kind"]?.string }
        #expect(kinds.filter { $0 == "error" }.count == 2, "\(kinds)")
        #expect(kinds.filter { $0 == "flag-set" }.count == 2, "\(kinds)")
        #expect(rows.contains { $0["kind"]?.string == "stop" && $0["cause"]?.string == "guest-link-reset of a flagged link" },
                "\(rows)")
        #expect(rows.contains { $0["kind"]?.string == "link-reset" && $0["action"]?.string == "stop" }, "\(rows)")
        let clears = rows.filter { $0["kind"]?.string == "flag-cleared" }.compactMap { $0["cause"]?.string }
        #expect(clears.contains("guest-link-reset"), "\(clears)")
        #expect(clears.contains { $0.hasPrefix("operator uid=\(getuid()) pid=\(getpid())") }, "\(clears)")
    }

    @Test(arguments: QEMUBuild.all) func operatorClearEmitsClearedAndDisarmsTheStop(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        rig.hostFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        #expect(try rig.client.execute("vfio-link-error-clear", arguments: .object(["device": .string("dev0")]))["return"] != nil)
        #expect(try rig.client.nextEvent("VFIO_LINK_ERROR_CLEARED")?["data"]?["reason"]?.string == "operator")
        try rig.guestLinkReset()
        #expect(try rig.client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "none")
        #expect(try rig.status() == "running")
    }

    @Test(arguments: QEMUBuild.all) func theFlagSurvivesABrokerRestart(_ build: QEMUBuild) throws {
        let rig = try RecoveryRig(build: build)
        rig.hostFatalError()
        _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
        rig.client = nil
        rig.broker = nil  // gone, as after a crash: nothing more is written
        try rig.startBroker()
        #expect(try rig.device()?["link-error"]?.bool == true)
        try rig.guestLinkReset()
        #expect(try rig.client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop")
        #expect(try rig.client.nextEvent("STOP") != nil)
    }
}
