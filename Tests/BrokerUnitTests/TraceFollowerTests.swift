import BrokerTesting
import Glibc
import QMPBroker
import LinkResetTrace
import Testing
import VFIOWatch

/// QEMU's trace lines, appended to the file the broker follows, become guest link resets
/// of the devices below the bridge the topology (`query-pci`) names.
@Suite struct TraceFollowerTests {
    /// What QEMU 7.2 writes when the guest sets Secondary Bus Reset on rp0 (00:1c.0), without
    /// and with `-msg timestamp=on` (captured, see CapturedTraceLines in LinkResetTraceTests).
    static let resetLines = [
        "pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40\n",
        "12968@1795610769.786173:pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40\n",
    ]

    private func flaggedAndWatched(_ machine: ScriptedMachine = .deviceBehindRootPort(),
                                   device: String = "dev0") throws -> ScriptedRecovery {
        let recovery = try ScriptedRecovery(device: device, machine: machine, traceLog: true)
        #expect(try recovery.waitForLinkResetWatch())
        try recovery.hostFatalError()
        #expect(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        return recovery
    }

    @Test func attachPointsQEMUsLogAtTheFileAndEnablesTheEvents() throws {
        let recovery = try ScriptedRecovery(traceLog: true)
        #expect(try recovery.waitForLinkResetWatch())
        let commands = recovery.vmm.commands
        let path = try #require(recovery.rig.configuration.traceLogPath)
        #expect(commands.contains { $0.name == "human-monitor-command" && $0.argument("command-line") == "logfile \"\(path)\"" })
        let enabled = commands.filter { $0.name == "trace-event-set-state" }.compactMap { $0.argument("name") }
        // The watched events, and the canary that proves they arrive.
        #expect(Set(enabled) == Set(LinkResetTracing.traceEvents + [LinkResetTracing.canaryEvent]))
        #expect(commands.contains { $0.name == "query-pci" })
        #expect(PathReader.read(path)?.contains("monitor_qmp_cmd_in_band") == true)
    }

    @Test(arguments: resetLines) func aSecondaryBusResetOnAFlaggedLinkStopsTheVM(_ line: String) throws {
        let recovery = try flaggedAndWatched()
        let mark = recovery.vmm.commands.count
        recovery.traceLog.append(line)
        #expect(recovery.vmm.waitForCommand("stop", after: mark) != nil)
        let reset = try #require(try recovery.nextEvent("VFIO_LINK_RESET"))
        #expect(reset["data"]?["device"]?.string == "dev0")
        #expect(reset["data"]?["origin"]?.string == "guest-link-reset")
        #expect(reset["data"]?["action"]?.string == "stop")
    }

    @Test func aLineSplitOverSeveralWritesIsReadWhole() throws {
        let recovery = try flaggedAndWatched()
        let mark = recovery.vmm.commands.count
        // The pauses give the follower a chance to wake on each piece; nothing waits on them.
        for piece in ["pci_cfg_write pcie-root-port 00:1c", ".0 @0x3e <- 0x4", "0", "\n"] {
            recovery.traceLog.append(piece)
            usleep(20_000)
        }
        #expect(recovery.vmm.waitForCommand("stop", after: mark) != nil)
        #expect(try recovery.vmActionsBeforeSync(since: mark) == ["stop"])
    }

    @Test func unrelatedLinesAndOtherBridgesLeaveTheVMRunning() throws {
        var machine = ScriptedMachine.deviceBehindRootPort()
        machine.devices += [
            .init(id: "rp1", type: "pcie-root-port", parentBus: "/machine/q35/pcie.0", bus: 0, slot: 0x1D, secondaryBus: 2),
            .init(id: "nic0", type: "e1000e", parentBus: "/machine/peripheral/rp1/rp1", bus: 2, slot: 0),
        ]
        let recovery = try flaggedAndWatched(machine)
        let mark = recovery.vmm.commands.count
        recovery.traceLog.append([
            "Invalid write at addr 0x0, size 1, region 'hpet', reason: invalid size (min:4 max:4)",
            "resettable_reset obj=0x56208b166100 cold=0",
            "qbus_reset_all obj=0x55f902494c60(PCIE)",
            "",
            "pci_cfg_read pcie-root-port 00:1c.0 @0x3e -> 0x40",  // a read, not a write
            "pci_cfg_write pcie-root-port 00:1c.0 @0x3c <- 0xb",  // interrupt line, not Bridge Control
            "pci_cfg_write pcie-root-port 00:1d.0 @0x3e <- 0x40",  // rp1: no watched device below
            "pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x42",  // rp0: this one
        ].joined(separator: "\n") + "\n")
        let reset = try #require(try recovery.nextEvent("VFIO_LINK_RESET"))
        #expect(reset["data"]?["action"]?.string == "stop")
        #expect(try recovery.vmActionsBeforeSync(since: mark) == ["stop"])
        #expect(try recovery.client.nextEvent("VFIO_LINK_RESET", timeout: 0) == nil)
    }

    @Test func theBridgesAboveADeviceComeFromQueryPCI() throws {
        // dev1 sits three bridges below rp1: rp1 (00:1d.0) → usp0 (02:00.0) → dsp0 (03:00.0) → dev1.
        let machine = ScriptedMachine(devices: [
            .init(id: "rp1", type: "pcie-root-port", parentBus: "/machine/q35/pcie.0", bus: 0, slot: 0x1D, secondaryBus: 2),
            .init(id: "usp0", type: "x3130-upstream", parentBus: "/machine/peripheral/rp1/rp1", bus: 2, slot: 0, secondaryBus: 3),
            .init(id: "dsp0", type: "xio3130-downstream", parentBus: "/machine/peripheral/usp0/usp0", bus: 3, slot: 0,
                  secondaryBus: 4),
            .init(id: "dev1", type: "vfio-pci", parentBus: "/machine/peripheral/dsp0/dsp0", bus: 4, slot: 0, host: "0000:3b:00.0"),
        ])
        let recovery = try flaggedAndWatched(machine, device: "dev1")
        let mark = recovery.vmm.commands.count
        recovery.traceLog.append("pci_cfg_write pcie-root-port 00:1d.0 @0x3e <- 0x40\n")
        #expect(recovery.vmm.waitForCommand("stop", after: mark) != nil)
        #expect(try recovery.nextEvent("VFIO_LINK_RESET")?["data"]?["device"]?.string == "dev1")
        // The reset cleared the bus numbers below rp1: the broker asks for the topology again.
        #expect(recovery.vmm.waitForCommand("query-pci", after: mark) != nil)
    }

    @Test func aGuestLinkResetWhileSomeoneElsePausedTheVMStopsNothing() throws {
        let recovery = try flaggedAndWatched()
        recovery.vmm.emit("STOP")
        #expect(try recovery.client.nextEvent("STOP") != nil)
        let mark = recovery.vmm.commands.count
        recovery.traceLog.append(Self.resetLines[0])
        #expect(try recovery.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "none")
        #expect(try recovery.vmActionsBeforeSync(since: mark) == [])
    }
}
