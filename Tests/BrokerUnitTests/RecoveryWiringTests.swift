import BrokerTesting
import QMPBroker
import QMPWire
import Testing

/// From a host signal to what the broker tells the VMM and the clients, with QEMU's side scripted.
@Suite struct RecoveryWiringTests {
    @Test func aFatalErrorIsInjectedAtThePortAboveAndAnnounced() throws {
        let recovery = try ScriptedRecovery()
        let mark = recovery.vmm.commands.count
        try recovery.hostFatalError()
        let event = try #require(try recovery.nextEvent("VFIO_PCI_ERROR"))
        #expect(event["data"]?["device"]?.string == "dev0")
        #expect(event["data"]?["severity"]?.string == "fatal")
        #expect(event["data"]?["action"]?.string == "forward")
        #expect(event["data"]?["link-error"]?.bool == true)
        // DLP is bit 4; a vfio-pci device's own AER capability is the host's, so rp0 takes it.
        #expect(try recovery.vmActionsBeforeSync(since: mark) == ["pcie_aer_inject_error rp0 0x10"])
    }

    @Test(arguments: ScriptedRecovery.Handover.allCases)
    func policyStopSendsStopAndInjectsNothing(handover: ScriptedRecovery.Handover) throws {
        let recovery = try ScriptedRecovery(policy: "stop", handover: handover)
        let mark = recovery.vmm.commands.count
        try recovery.hostFatalError()
        let stop = try #require(recovery.vmm.waitForCommand("stop", after: mark))
        #expect(stop.arguments == nil)
        #expect(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"]?["action"]?.string == "stop")
        #expect(try recovery.client.nextEvent("STOP") != nil)
        #expect(try recovery.vmActionsBeforeSync(since: mark) == ["stop"])
    }

    /// The host failed to recover a flagged device (an SR-IOV VF left reading all ones): a
    /// client's `cont` is refused, not forwarded, until the flag is cleared.
    @Test func aContIsRefusedWhileAFlaggedDeviceFailedHostRecovery() throws {
        let recovery = try ScriptedRecovery(policy: "stop")
        try recovery.hostFatalError()
        #expect(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        recovery.rig.broker.deliverUEvent(RecoveryDemo.recoveryUEvent(host: recovery.sysfs.host, event: "FAILED_RECOVERY", online: false))
        #expect(try recovery.nextEvent("VFIO_HOST_RECOVERY")?["data"]?["result"]?.string == "failed")
        let mark = recovery.vmm.commands.count
        try recovery.client.send(#"{"execute": "cont", "id": "c1"}"#)
        let refused = try #require(try recovery.client.nextReply().flatMap { try? JSON.parse($0) })
        #expect(refused["error"]?["class"]?.string == "GenericError")
        #expect(refused["error"]?["desc"]?.string?.hasPrefix("Device 'dev0'") == true, "\(refused)")
        #expect(refused["id"]?.string == "c1")
        #expect(recovery.vmm.commands.dropFirst(mark).contains { $0.name == "cont" } == false)

        try recovery.client.send(#"{"execute": "vfio-link-error-clear", "arguments": {"device": "dev0"}, "id": "x"}"#)
        #expect(try recovery.client.nextReply() == #"{"return": {}, "id": "x"}"#)
        try recovery.client.send(#"{"execute": "cont", "id": "c2"}"#)
        #expect(try recovery.client.nextReply() == #"{"return": {}, "id": "c2"}"#)
    }

    @Test func aVMPausedBySomeoneElseIsNotStoppedAgainUntilItRuns() throws {
        let recovery = try ScriptedRecovery(policy: "stop")
        recovery.vmm.emit("STOP")
        #expect(try recovery.client.nextEvent("STOP") != nil)
        var mark = recovery.vmm.commands.count
        try recovery.hostFatalError()
        #expect(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"]?["action"]?.string == "none")
        #expect(try recovery.vmActionsBeforeSync(since: mark) == [])

        recovery.vmm.emit("RESUME")
        #expect(try recovery.client.nextEvent("RESUME") != nil)
        mark = recovery.vmm.commands.count
        try recovery.hostFatalError()
        #expect(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"]?["action"]?.string == "stop")
        #expect(try recovery.vmActionsBeforeSync(since: mark) == ["stop"])
    }

    @Test func autoContResumesAVMTheBrokerStoppedOnceTheHostRecovered() throws {
        let recovery = try ScriptedRecovery(policy: "stop", autoCont: true)
        try recovery.hostFatalError()
        #expect(try recovery.client.nextEvent("STOP") != nil)
        let mark = recovery.vmm.commands.count
        recovery.hostRecovered()
        #expect(try recovery.nextEvent("VFIO_HOST_RECOVERY")?["data"]?["result"]?.string == "successful")
        #expect(try recovery.vmActionsBeforeSync(since: mark) == ["cont"])
        #expect(recovery.vmm.isRunning)
    }

    @Test func autoContLeavesAVMSomeoneElseResumedMeanwhile() throws {
        let recovery = try ScriptedRecovery(policy: "stop", autoCont: true)
        try recovery.hostFatalError()
        #expect(try recovery.client.nextEvent("STOP") != nil)
        // An operator resumed it on QEMU's own monitor: the pause is no longer the broker's.
        recovery.vmm.emit("RESUME")
        #expect(try recovery.client.nextEvent("RESUME") != nil)
        let mark = recovery.vmm.commands.count
        recovery.hostRecovered()
        #expect(try recovery.nextEvent("VFIO_HOST_RECOVERY") != nil)
        #expect(try recovery.vmActionsBeforeSync(since: mark) == [])
    }

    @Test func deviceDeletedEndsTheWatchOfADiscoveredDeviceBeforeClientsHearOfIt() throws {
        var machine = ScriptedMachine.deviceBehindRootPort()
        machine.devices.append(.init(id: "dev1", type: "vfio-pci", parentBus: "/machine/peripheral/rp0/rp0",
                                     bus: 1, slot: 1, host: "0000:3c:00.0"))
        let recovery = try ScriptedRecovery(machine: machine)
        // dev1 is in no config: the broker found it in QOM at attach.
        #expect(try recovery.waitForDevices { $0.contains("dev1") })
        recovery.vmm.emit("DEVICE_DELETED", data: #"{"device": "dev1", "path": "/machine/peripheral/dev1"}"#)
        #expect(try recovery.client.nextEvent("DEVICE_DELETED") != nil)
        #expect(try recovery.deviceIDs() == ["dev0"])
        // A configured device stays watched when QEMU deletes it.
        recovery.vmm.emit("DEVICE_DELETED", data: #"{"device": "dev0", "path": "/machine/peripheral/dev0"}"#)
        #expect(try recovery.client.nextEvent("DEVICE_DELETED") != nil)
        #expect(try recovery.deviceIDs() == ["dev0"])
    }

    @Test func deviceAddMakesTheBrokerLookForNewDevices() throws {
        let recovery = try ScriptedRecovery()
        recovery.vmm.updateScript { script in
            script.machine.devices.append(.init(id: "dev2", type: "vfio-pci", parentBus: "/machine/peripheral/rp0/rp0",
                                                bus: 1, slot: 2, host: "0000:3d:00.0"))
        }
        recovery.vmm.reply(to: "device_add", with: .empty)
        try recovery.client.send(#"{"execute": "device_add", "arguments": {"driver": "vfio-pci", "id": "dev2"}, "id": 1}"#)
        #expect(try recovery.client.nextReply() == #"{"return": {}, "id": 1}"#)
        #expect(try recovery.waitForDevices { $0.contains("dev2") })
    }
}

extension ScriptedRecovery {
    func deviceIDs() throws -> [String] {
        try client.send(#"{"execute": "query-vfio-devices", "id": "ids"}"#)
        let reply = try client.nextReply().flatMap { try? JSON.parse($0) }
        return reply?["return"]?.elements.compactMap { $0["id"]?.string } ?? []
    }

    func waitForDevices(_ condition: ([String]) -> Bool) throws -> Bool {
        let deadline = Deadline(after: 10)
        while !deadline.passed {
            if condition(try deviceIDs()) { return true }
        }
        return false
    }
}
