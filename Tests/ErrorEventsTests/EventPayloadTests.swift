import ErrorEvents
import Testing

/// The typed payloads carry exactly the schema's members and enum spellings (SPEC section 6).
@Suite struct EventPayloadTests {
    @Test func eventNames() {
        #expect(PCIErrorEvent.name == "VFIO_PCI_ERROR")
        #expect(LinkResetEvent.name == "VFIO_LINK_RESET")
        #expect(LinkErrorClearedEvent.name == "VFIO_LINK_ERROR_CLEARED")
    }

    @Test func enumSpellings() {
        #expect(Severity.allCases.map(\.rawValue) == ["correctable", "non-fatal", "fatal"])
        #expect(PCIErrorEvent.Action.allCases.map(\.rawValue) == ["none", "forward", "stop"])
        #expect(LinkResetEvent.Action.allCases.map(\.rawValue) == ["none", "stop"])
        #expect(LinkResetOrigin.allCases.map(\.rawValue) == ["guest-link-reset", "guest-hot-reset"])
        #expect(LinkErrorClearedEvent.Reason.allCases.map(\.rawValue) == ["guest-link-reset", "vm-reset", "operator"])
        #expect(DeviceErrorStatus.allCases.map(\.rawValue) == ["healthy", "non-fatal", "link-error", "stopped", "recovered"])
    }

    @Test func pciErrorEventCarriesTheHostErrorAndUsesSysfsNames() throws {
        let error = try HostError(severity: .nonFatal, names: ["COMP_TIME", "UnsupReq"], count: 3, source: .sysfs)
        let event = PCIErrorEvent(error, linkError: false, action: .forward)
        #expect(event.severity == .nonFatal)
        #expect(event.errorNames == ["CmpltTO", "UnsupReq"])
        #expect(event.count == 3)
        #expect(event.source == .sysfs)
        #expect(!event.linkError)
        #expect(event.action == .forward)
    }

    @Test func eventCountIsTheCoalescedCount() {
        let burst = hostError(.correctable, ["BadTLP"], count: 5)
        var machine = DeviceErrorMachine(policy: .report)
        #expect(machine.hostError(burst) == [.emitPCIError(PCIErrorEvent(severity: .correctable, errors: burst.errors, count: 5, source: .sysfs, linkError: false, action: .none))])
    }
}
