import ErrorEvents
import Testing

/// `stopsOnFatalError`: asked by a fatal-tagged notification before the AER counters are
/// read, so that its `stop` is written first. The broker then skips the machine's own
/// `.stopVM` for that input, so the answer must match what a fatal error actually does:
/// a false "yes" leaves a VM stopped that the machine never claimed, a false "no" loses
/// the early write.
@Suite struct StopsOnFatalErrorTests {
    static let policies: [DevicePolicy] = [.report, .forward, .forwardAutoCont, .stop, .stopAutoCont]

    /// Only `stop` stops, and only a VM that runs and that the broker is not already holding.
    static func expected(_ state: MachineState, _ policy: DevicePolicy) -> Bool {
        guard policy.mode == .stop else { return false }
        switch state {
        case .healthyRunning, .nonFatalRunning, .linkErrorRunning, .recoveredRunning:
            return true
        case .healthyPaused, .nonFatalPaused, .linkErrorPaused, .recoveredPaused,
             .stopping, .stoppedByBroker, .clearedWhileStopping:
            return false
        }
    }

    @Test(arguments: MachineState.allCases, StopsOnFatalErrorTests.policies)
    func answersByPolicyAndState(_ state: MachineState, _ policy: DevicePolicy) {
        let machine = state.machine(policy: policy)
        #expect(machine.stopsOnFatalError == Self.expected(state, policy))
    }

    @Test(arguments: MachineState.allCases, StopsOnFatalErrorTests.policies)
    func agreesWithWhatAFatalErrorDoes(_ state: MachineState, _ policy: DevicePolicy) {
        var machine = state.machine(policy: policy)
        let predicted = machine.stopsOnFatalError
        #expect(machine.apply(.fatal).contains(.stopVM) == predicted)
        // A second fatal-tagged notification right after never writes a second stop.
        #expect(!machine.stopsOnFatalError)
    }

    @Test func aStopRestoredWhileTheVMIsPausedIsHeld() {
        let stored = PersistedDeviceState(linkError: true, stoppedByBroker: true)
        #expect(!DeviceErrorMachine(policy: .stop, restoring: stored, vmRunning: false).stopsOnFatalError)
        // Resumed while the broker was away: the pause is gone, the next fatal error stops.
        #expect(DeviceErrorMachine(policy: .stop, restoring: stored, vmRunning: true).stopsOnFatalError)
    }

    @Test func aClientStopRacingTheBrokersOwnAgreesWithTheMachine() {
        // A client's `stop` while the broker's is in flight hands the pause over; the VM
        // counts as running until a STOP says otherwise, so a fatal error stops it again.
        var machine = DeviceErrorMachine(policy: .stop, after: [.fatal, .clientStop])
        #expect(machine.stopsOnFatalError == machine.apply(.fatal).contains(.stopVM))
    }
}
