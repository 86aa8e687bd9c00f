import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing
import VFIOWatch

/// An eventfd tagged fatal (`vfio-eventfd-add` severity fatal) whose AER counters tell a
/// lesser story: the tag wins, and under `stop` the VM is stopped before the counters are read.
@Suite struct FatalTagTests {
    @Test(arguments: [("non-fatal", "CmpltTO"), ("correctable", "RxErr")])
    func aFatalTagIsReportedAsFatalBeforeTheLesserErrorTheCountersShow(severity: String, name: String) throws {
        let recovery = try ScriptedRecovery(policy: "stop")
        let mark = recovery.vmm.commands.count
        recovery.setCounters(severity, name)
        try EventFD.signal(recovery.fatalFD)

        let fatal = try #require(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"])
        #expect(fatal["severity"]?.string == "fatal")
        #expect(fatal["errors"] == .strings([]))
        #expect(fatal["source"]?.string == "eventfd")
        #expect(fatal["action"]?.string == "stop")
        #expect(fatal["link-error"]?.bool == true)
        #expect(fatal["note"]?.string == "tagged fatal; the AER counters show only \(severity) errors")
        let lesser = try #require(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"])
        #expect(lesser["severity"]?.string == severity)
        #expect(lesser["errors"] == .strings([name]))
        #expect(lesser["link-error"]?.bool == true)
        #expect(lesser["action"]?.string == "none")
        #expect(try recovery.client.nextEvent("VFIO_PCI_ERROR", timeout: 0.2) == nil)
        #expect(try recovery.waitForDevice { $0?["link-error"]?.bool == true })
        // The stop written early stands for the machine's own: one, not two.
        #expect(try recovery.vmActionsBeforeSync(since: mark) == ["stop"])
    }

    /// Five fatal-tagged signals read at once, with one non-fatal error counted: five fatal
    /// errors and one non-fatal one, not five of each (the signals are the tag's).
    @Test func coalescedFatalSignalsCountForTheTagNotForTheLesserError() throws {
        let recovery = try ScriptedRecovery(policy: "stop")
        recovery.setCounters("non-fatal", "CmpltTO")
        try EventFD.signal(recovery.fatalFD, adding: 5)

        let fatal = try #require(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"])
        #expect(fatal["severity"]?.string == "fatal")
        #expect(fatal["count"]?.integer == 5)
        let lesser = try #require(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"])
        #expect(lesser["severity"]?.string == "non-fatal")
        #expect(lesser["count"]?.integer == 1)
    }

    /// A VM paused by someone else (policy `stop`), or a policy that never stops: the tag
    /// still sets the flag, and no `stop` is written, early or late.
    @Test(arguments: [("stop", true), ("report", false)])
    func aFatalTagThatMustNotStopWritesNoStop(policy: String, pausedFirst: Bool) throws {
        let recovery = try ScriptedRecovery(policy: policy)
        if pausedFirst {
            recovery.vmm.emit("STOP")
            #expect(try recovery.client.nextEvent("STOP") != nil)
        }
        let mark = recovery.vmm.commands.count
        recovery.setCounters("non-fatal", "CmpltTO")
        try EventFD.signal(recovery.fatalFD)

        let fatal = try #require(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"])
        #expect(fatal["severity"]?.string == "fatal")
        #expect(fatal["action"]?.string == "none")
        #expect(fatal["link-error"]?.bool == true)
        #expect(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"]?["severity"]?.string == "non-fatal")
        #expect(try recovery.vmActionsBeforeSync(since: mark) == [])
    }

    /// Ordering, observed without timing: `aer_dev_nonfatal` is a FIFO, so the broker's
    /// loop blocks opening it until the test writes the counters. A `stop` that reaches the
    /// VMM before that was written before the counters were read.
    @Test func theStopReachesTheVMMWhileTheCountersAreStillUnread() throws {
        let recovery = try ScriptedRecovery(policy: "stop")
        let mark = recovery.vmm.commands.count
        let file = "aer_dev_nonfatal"
        let path = "\(recovery.sysfs.deviceDirectory)/\(file)"
        recovery.sysfs.remove(file)
        try #require(mkfifo(path, 0o600) == 0)
        let counters = FakeSysfsTree.uncorrectableNames.map { "\($0) \($0 == "CmpltTO" ? 1 : 0)\n" }.joined()
            + "TOTAL_ERR_NONFATAL 1\n"
        try EventFD.signal(recovery.fatalFD)

        let early = recovery.vmm.waitForCommand("stop", after: mark, timeout: 5)
        // Unblock the loop whatever happened, then leave a plain file for any later read.
        let fed = Self.feed(path, counters)
        recovery.sysfs.writeRaw(file, counters)
        try #require(fed, "the broker never opened the FIFO: the counters were not read")
        #expect(early != nil, "no stop reached the VMM before the counters were read")

        let fatal = try #require(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"])
        #expect(fatal["severity"]?.string == "fatal")
        #expect(fatal["action"]?.string == "stop")
        #expect(try recovery.nextEvent("VFIO_PCI_ERROR")?["data"]?["errors"] == .strings(["CmpltTO"]))
        #expect(try recovery.vmActionsBeforeSync(since: mark) == ["stop"])
    }

    /// Writes `text` into the FIFO once a reader has it open (bounded); the reader then sees EOF.
    static func feed(_ path: String, _ text: String) -> Bool {
        let deadline = Deadline(after: 10)
        while !deadline.passed {
            // Non-blocking: ENXIO while nobody reads, so a broker that never reads cannot hang the test.
            let fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if fd < 0 {
                usleep(1000)
                continue
            }
            defer { close(fd) }
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
        }
        return false
    }
}

extension ScriptedRecovery {
    /// Counters showing one error of `severity` (and nothing fatal), without signalling.
    func setCounters(_ severity: String, _ name: String) {
        sysfs.set(correctable: severity == "correctable" ? [name: 1] : [:],
                  nonFatal: severity == "non-fatal" ? [name: 1] : [:], fatal: [:])
    }
}
