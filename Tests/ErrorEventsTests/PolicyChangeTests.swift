import ErrorEvents
import Testing

/// `vfio-device-set-policy` applies from the next input on; it never acts by itself.
@Suite struct PolicyChangeTests {
    @Test(arguments: MachineState.allCases)
    func changingPolicyProducesNoActions(_ state: MachineState) {
        var machine = state.machine(policy: .forward)
        let before = machine.persistedState
        for policy in [DevicePolicy.report, .stop, .stopAutoCont, .forwardAutoCont, .forward] {
            #expect(machine.policyChanged(to: policy) == [])
            #expect(machine.policy == policy)
        }
        #expect(machine.persistedState == before)
    }

    @Test func switchingToStopWhileFlaggedWaitsForTheNextInput() {
        var machine = DeviceErrorMachine(policy: .report, after: [.fatal])
        expectTranscript(&machine, [
            Step(.policy(.stop), [], .linkError),
            Step(.fatal, [.stopVM, persist(flag: true, stoppedByBroker: true), reported(dlp, flag: true, .stop)], .stopped),
        ])
    }

    @Test func flagRecordedUnderReportProtectsAfterSwitchingToForward() {
        var machine = DeviceErrorMachine(policy: .report, after: [.fatal])
        expectTranscript(&machine, [
            Step(.policy(.forward), []),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
    }

    @Test func enablingAutoContWhileStoppedByTheBrokerContsOnRecovery() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.policy(.forwardAutoCont), [], .stopped),
            Step(.hostRecoveryDone, [hostRecovered(flag: true), .contVM], .stopped),
        ])
    }

    @Test func disablingAutoContWhileStoppedByTheBrokerMeansNoCont() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.policy(.forward), [], .stopped),
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .stopped),
        ])
    }

    @Test func policySemantics() {
        #expect(DevicePolicy.forward.forwardsToGuest && !DevicePolicy.forward.stopsOnFatalError && DevicePolicy.forward.stopsOnFlaggedLinkReset)
        #expect(!DevicePolicy.stop.forwardsToGuest && DevicePolicy.stop.stopsOnFatalError && DevicePolicy.stop.stopsOnFlaggedLinkReset)
        #expect(!DevicePolicy.report.forwardsToGuest && !DevicePolicy.report.stopsOnFatalError && !DevicePolicy.report.stopsOnFlaggedLinkReset)
        #expect(DevicePolicy.Mode.allCases.map(\.rawValue) == ["report", "forward", "stop"])
    }
}
