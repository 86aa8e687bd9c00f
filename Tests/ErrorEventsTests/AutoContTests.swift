import ErrorEvents
import Testing

/// `auto-cont`: after the flag is cleared, `cont` a VM the broker stopped, and only if
/// nobody stopped or resumed it since.
@Suite struct AutoContTests {
    @Test func hostRecoveryContsTheBrokersStop() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .forward), forwarded(dlp)]),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)]),
            Step(.vmStopped, [], .stopped),
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered), .contVM], .recovered),
            Step(.vmResumed, [], .recovered),
        ])
    }

    @Test func operatorClearContsTheBrokersStop() {
        var machine = DeviceErrorMachine(policy: .stopAutoCont)
        expectTranscript(&machine, [
            Step(.fatal, [.stopVM, persist(flag: true, stoppedByBroker: true), reported(dlp, flag: true, .stop)]),
            Step(.vmStopped, []),
            Step(.operatorClear, [persist(flag: false, stoppedByBroker: false), cleared(.operator), .contVM], .recovered),
        ])
    }

    @Test func withoutAutoContThePauseIsHandedToManagement() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered)], .recovered),
            // Enabling auto-cont afterwards does not resume retroactively.
            Step(.policy(.forwardAutoCont), [], .recovered),
            Step(.operatorClear, [], .recovered),
        ])
    }

    @Test func operatorContThenStopInBetweenMeansNoCont() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.vmStopped, [], .linkError),
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered)], .recovered),
        ])
    }

    @Test func operatorStopOnTheBrokersPauseMeansNoCont() {
        // QEMU emits no STOP for a `stop` on a paused VM: the broker learns it from the command.
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.clientStop, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered)], .recovered),
        ])
    }

    @Test func clientStopRacingTheBrokersStopMeansNoCont() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr])
        expectTranscript(&machine, [
            Step(.clientStop, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.vmStopped, [], .linkError),
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered)], .recovered),
        ])
    }

    @Test func stopBySomeoneElseIsNeverContinued() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal])
        expectTranscript(&machine, [
            Step(.vmStopped, [], .linkError),
            Step(.sbr, [linkReset(flag: true, .none)], .linkError),
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered)], .recovered),
        ])
    }

    @Test func recoveryWhileTheBrokersStopIsInFlightContsWhenItLands() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr])
        expectTranscript(&machine, [
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: true), cleared(.hostRecovered)], .recovered),
            Step(.vmStopped, [persist(flag: false, stoppedByBroker: false), .contVM], .recovered),
            Step(.vmResumed, [], .recovered),
        ])
    }

    @Test func recoveryWhileStopInFlightWithoutAutoContLeavesItPaused() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr])
        expectTranscript(&machine, [
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: true), cleared(.hostRecovered)]),
            Step(.vmStopped, [persist(flag: false, stoppedByBroker: false)], .recovered),
        ])
    }

    @Test func clientStopAfterClearWhileStopInFlightMeansNoCont() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .operatorClear])
        expectTranscript(&machine, [
            Step(.clientStop, [persist(flag: false, stoppedByBroker: false)], .recovered),
            Step(.vmStopped, [], .recovered),
        ])
    }

    @Test func systemResetDoesNotEndTheBrokersPause() {
        // `system_reset` on a paused VM leaves it paused and is neither a stop nor a cont.
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.systemReset, [], .stopped),
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered), .contVM], .recovered),
        ])
    }

    @Test func failedRecoveryDoesNotCont() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.hostRecoveryFailed, [], .stopped),
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered), .contVM], .recovered),
        ])
    }
}
