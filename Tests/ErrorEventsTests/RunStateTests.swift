import ErrorEvents
import Testing

/// The VM's run state as machine inputs: learnt at attach, then STOP, RESUME and RESET.
@Suite struct RunStateTests {
    static let brokerStop = PersistedDeviceState(linkError: true, stoppedByBroker: true)

    /// A machine restored at a broker start, before `query-status` has answered.
    static func restoredBeforeQueryStatus(_ policy: DevicePolicy, _ stored: PersistedDeviceState) -> DeviceErrorMachine {
        DeviceErrorMachine(policy: policy, restoring: stored, vm: VMRunState())
    }

    @Test func aRestoredBrokerStopIsKeptAsStoredUntilTheRunStateIsLearnt() {
        let machine = Self.restoredBeforeQueryStatus(.forwardAutoCont, Self.brokerStop)
        // Provisionally the VM is assumed running, so the stop is not the broker's...
        #expect(machine.persistedState == PersistedDeviceState(linkError: true, stoppedByBroker: false))
        // ...but the row keeps what was stored until it is judged.
        #expect(machine.storedState == Self.brokerStop)
    }

    @Test func aRestoredBrokerStopHoldsWhenTheVMIsStillPaused() {
        var machine = Self.restoredBeforeQueryStatus(.forwardAutoCont, Self.brokerStop)
        expectTranscript(&machine, [
            Step(.runStateLearnt(running: false), [], .stopped),
            Step(.hostRecoveryDone, [hostRecovered(flag: true), .contVM], .stopped),
            Step(.vmResumed, clearedByResume, .recovered),
        ])
        #expect(machine.storedState == .clean)
    }

    @Test func aRestoredBrokerStopIsDroppedWhenTheVMWasResumedMeanwhile() {
        var machine = Self.restoredBeforeQueryStatus(.forwardAutoCont, Self.brokerStop)
        expectTranscript(&machine, [
            Step(.runStateLearnt(running: true), [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
        ])
    }

    @Test func inputsBeforeTheRunStateIsLearntAreProvisional() {
        var machine = Self.restoredBeforeQueryStatus(.forward, Self.brokerStop)
        expectTranscript(&machine, [
            // The provisional machine sees a running VM with the flag set...
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
            // ...and is replaced by the judgement of the stored state once it is known.
            Step(.runStateLearnt(running: false), [], .stopped),
            Step(.vmResumed, clearedByResume, .recovered),
        ])
    }

    @Test func aRestoredBrokerStopIsJudgedAtOnceWhenTheRunStateIsKnown() {
        var vm = VMRunState()
        vm.apply(.runStateLearnt(running: false))
        let machine = DeviceErrorMachine(policy: .forward, restoring: Self.brokerStop, vm: vm)
        #expect(machine.status == .stopped)
        #expect(machine.storedState == Self.brokerStop)
    }

    @Test func learningTheRunStateOfAnUnrestoredMachineIsAStopOrAResume() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal])
        expectTranscript(&machine, [
            Step(.runStateLearnt(running: false), [], .linkError),
            // Paused by someone else: a link reset does not stop it again.
            Step(.sbr, [linkReset(flag: true, .none)], .linkError),
            Step(.runStateLearnt(running: true), [], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
    }

    @Test func vmEventRoutesEachInput() {
        var routed = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr])
        var direct = routed
        #expect(routed.vmEvent(.stopped) == direct.vmStopped())
        #expect(routed.vmEvent(.reset) == direct.systemReset())
        #expect(routed.vmEvent(.resumed) == direct.vmResumed())
        #expect(routed.status == .linkError)  // the reset ended the link reset the stop was for
        #expect(routed.vmEvent(.runStateLearnt(running: false)) == direct.runStateLearnt(running: false))
    }

    @Test func theVMRunStateFollowsStopAndResumeAndIgnoresReset() {
        var vm = VMRunState()
        #expect(vm.running && !vm.learnt)
        vm.apply(.runStateLearnt(running: false))
        #expect(!vm.running && vm.learnt)
        vm.apply(.resumed)
        #expect(vm.running)
        vm.apply(.stopped)
        vm.apply(.reset)
        #expect(!vm.running)
    }
}
