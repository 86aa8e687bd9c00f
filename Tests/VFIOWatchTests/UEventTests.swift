import Testing
import VFIOWatch

/// Builds a datagram the way lib/kobject_uevent.c does: `ACTION@DEVPATH\0`, then ACTION,
/// DEVPATH, SUBSYSTEM, the caller's keys (`pci_uevent_ers()`), the subsystem's keys
/// (`dev_uevent`, `pci_uevent`), SEQNUM, each `KEY=VALUE\0`.
func kernelUEvent(action: String = "change", devpath: String, subsystem: String, callerKeys: [String], subsystemKeys: [String], seqnum: UInt64) -> [UInt8] {
    let entries = ["ACTION=\(action)", "DEVPATH=\(devpath)", "SUBSYSTEM=\(subsystem)"] + callerKeys + subsystemKeys + ["SEQNUM=\(seqnum)"]
    var bytes = Array("\(action)@\(devpath)".utf8) + [0]
    for entry in entries { bytes += Array(entry.utf8) + [0] }
    return bytes
}

/// What `pci_uevent_ers()` sends for a vfio-pci device at 0000:01:00.0 below root port 00:1c.0.
func pciRecoveryUEvent(_ errorEvent: String, online: Int, seqnum: UInt64 = 4321) -> [UInt8] {
    kernelUEvent(
        devpath: "/devices/pci0000:00/0000:00:1c.0/0000:01:00.0",
        subsystem: "pci",
        callerKeys: ["ERROR_EVENT=\(errorEvent)", "DEVICE_ONLINE=\(online)"],
        subsystemKeys: [
            "DRIVER=vfio-pci", "PCI_CLASS=20000", "PCI_ID=8086:10D3", "PCI_SUBSYS_ID=8086:0000",
            "PCI_SLOT_NAME=0000:01:00.0", "MODALIAS=pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00",
        ],
        seqnum: seqnum
    )
}

@Suite struct UEventTests {
    @Test func parsesTheThreeRecoveryEvents() throws {
        let cases: [(String, Int, PCIRecoveryEvent, Bool)] = [
            ("BEGIN_RECOVERY", 0, .beginRecovery, false),
            ("SUCCESSFUL_RECOVERY", 1, .successfulRecovery, true),
            ("FAILED_RECOVERY", 0, .failedRecovery, false),
        ]
        for (text, online, expected, isOnline) in cases {
            guard case .event(let event) = UEvent.parse(pciRecoveryUEvent(text, online: online)) else {
                Issue.record("\(text) did not parse")
                continue
            }
            #expect(event.action == "change")
            #expect(event.devpath == "/devices/pci0000:00/0000:00:1c.0/0000:01:00.0")
            #expect(event.subsystem == "pci")
            #expect(event.errorEvent == expected)
            #expect(event.deviceOnline == isOnline)
            #expect(event.pciSlotName == "0000:01:00.0")
            #expect(event.pciAddress == HostAddress("0000:01:00.0"))
            #expect(event.sequenceNumber == 4321)
            #expect(event.environment["DRIVER"] == "vfio-pci")
            #expect(event.environment.count == 12)
        }
    }

    @Test func anOrdinaryUEventHasNoRecoveryFields() throws {
        let bytes = kernelUEvent(action: "add", devpath: "/devices/virtual/net/tap0", subsystem: "net",
                                 callerKeys: [], subsystemKeys: ["INTERFACE=tap0", "IFINDEX=7"], seqnum: 9)
        guard case .event(let event) = UEvent.parse(bytes) else {
            Issue.record("did not parse")
            return
        }
        #expect(event.action == "add")
        #expect(event.errorEvent == nil && event.deviceOnline == nil && event.pciSlotName == nil && event.pciAddress == nil)
        #expect(event.environment["INTERFACE"] == "tap0")
    }

    @Test func valuesMayContainEqualsAndAt() throws {
        let bytes = kernelUEvent(devpath: "/devices/x", subsystem: "s", callerKeys: ["NOTE=a=b@c"], subsystemKeys: [], seqnum: 1)
        guard case .event(let event) = UEvent.parse(bytes) else {
            Issue.record("did not parse")
            return
        }
        #expect(event.environment["NOTE"] == "a=b@c")
    }

    @Test func unknownErrorEventAndOnlineValuesAreNil() throws {
        let bytes = kernelUEvent(devpath: "/devices/x", subsystem: "pci", callerKeys: ["ERROR_EVENT=SOMETHING_NEW", "DEVICE_ONLINE=yes"], subsystemKeys: ["PCI_SLOT_NAME=junk"], seqnum: 1)
        guard case .event(let event) = UEvent.parse(bytes) else {
            Issue.record("did not parse")
            return
        }
        #expect(event.errorEvent == nil)
        #expect(event.deviceOnline == nil)
        #expect(event.pciSlotName == "junk")
        #expect(event.pciAddress == nil)
    }

    @Test func libudevDatagramsAreIgnored() {
        // udev's format: magic, then a binary header (prefix "libudev", magic 0xfeedcafe, ...).
        let bytes: [UInt8] = Array("libudev".utf8) + [0, 0xfe, 0xed, 0xca, 0xfe, 0x28, 0, 0, 0] + Array("ACTION=change".utf8) + [0]
        #expect(UEvent.parse(bytes) == .libudev)
    }

    @Test func malformedDatagramsAreRejected() {
        #expect(UEvent.parse([UInt8]()) == .malformed(reason: "empty datagram"))
        #expect(UEvent.parse(Array("no header here".utf8) + [0]) == .malformed(reason: "no ACTION@DEVPATH header"))
        #expect(UEvent.parse(Array("change@devices/x".utf8) + [0]) == .malformed(reason: "bad ACTION@DEVPATH header"))
        #expect(UEvent.parse(Array("@/devices/x".utf8) + [0]) == .malformed(reason: "bad ACTION@DEVPATH header"))
        #expect(UEvent.parse(Array("\0NOTE=a@/b\0".utf8)) == .malformed(reason: "no ACTION@DEVPATH header"))
        #expect(UEvent.parse(Array("change@/devices/x\0ACTION=change\0garbage\0".utf8)) == .malformed(reason: "environment entry without KEY="))
        #expect(UEvent.parse(Array("change@/devices/x\0=value\0".utf8)) == .malformed(reason: "environment entry without KEY="))
        #expect(UEvent.parse(Array("change@/devices/x\0ACTION=add\0".utf8)) == .malformed(reason: "header and ACTION/DEVPATH disagree"))
        #expect(UEvent.parse(Array("change@/devices/x\0DEVPATH=/devices/y\0".utf8)) == .malformed(reason: "header and ACTION/DEVPATH disagree"))
    }

    @Test func aHeaderOnlyDatagramIsAnEventWithNoEnvironment() {
        #expect(UEvent.parse(Array("remove@/devices/x\0".utf8)) == .event(UEvent(action: "remove", devpath: "/devices/x", environment: [:])))
    }

    @Test func parsesASliceOfAReceiveBuffer() {
        var buffer = pciRecoveryUEvent("BEGIN_RECOVERY", online: 0)
        let length = buffer.count
        buffer += [UInt8](repeating: 0xAA, count: 100)
        guard case .event(let event) = UEvent.parse(buffer[..<length]) else {
            Issue.record("did not parse")
            return
        }
        #expect(event.errorEvent == .beginRecovery)
    }
}
