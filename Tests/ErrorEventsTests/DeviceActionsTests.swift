import ErrorEvents
import Testing

@Suite struct DeviceActionsTests {
    @Test func behavesAsAnOrderedCollection() {
        let actions: DeviceActions = [.stopVM, persist(flag: true, stoppedByBroker: true), .contVM]
        #expect(actions.count == 3)
        #expect(Array(actions) == [.stopVM, persist(flag: true, stoppedByBroker: true), .contVM])
        #expect(actions.first == .stopVM)
        #expect(DeviceActions.none.isEmpty)
        #expect(actions != [.stopVM, .contVM, persist(flag: true, stoppedByBroker: true)])
    }

    @Test func holdsUpToItsCapacity() {
        let full: DeviceActions = [.stopVM, .contVM, .stopVM, .contVM]
        #expect(full.count == DeviceActions.capacity)
    }

    /// The stop that follows a guest link reset comes first and costs no allocation: the
    /// machine is a small value and its actions live inline.
    @Test func machineIsASmallValue() {
        #expect(MemoryLayout<DeviceErrorMachine>.size <= 48)
        let actions = DeviceErrorMachine(policy: .forward, after: [.fatal]).guestLinkResetActions()
        #expect(actions.first == .stopVM)
    }
}

extension DeviceErrorMachine {
    fileprivate func guestLinkResetActions() -> DeviceActions {
        var copy = self
        return copy.guestLinkReset(origin: .guestLinkReset)
    }
}
