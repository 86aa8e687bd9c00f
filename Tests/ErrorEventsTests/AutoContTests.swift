import ErrorEvents
import Testing

/// `auto-cont`: once the host has recovered, `cont` a VM the broker stopped, and only if
/// nobody stopped or resumed it since. Host recovery never clears the flag itself.
@Suite struct AutoContTests {
    @Test func hostRecoveryContsTheBrokersStopAndTheResumeClearsTheFlag() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), forwarded(dlp, flag: true)]),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)]),
            Step(.vmStopped, [], .stopped),
            Step(.hostRecoveryDone, [hostRecovered(flag: true), .contVM], .stopped),
            Step(.vmResumed, clearedByResume, .recovered),
        ])
    }

    @Test func hostRecoveredBeforeTheStopLandedContsAtItsSTOP() {
        // The real order on a fast guest: error, host recovery, guest link reset, stop.
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .hostRecoveryDone])
        expectTranscript(&machine, [
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)]),
            Step(.vmStopped, [.contVM], .stopped),
            Step(.vmResumed, clearedByResume, .recovered),
        ])
    }

    @Test func noContWhileTheHostIsStillRecovering() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr])
        expectTranscript(&machine, [
            Step(.vmStopped, [], .stopped),
            Step(.hostRecoveryStarted, [], .stopped),
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
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .stopped),
            // Enabling auto-cont afterwards does not resume retroactively.
            Step(.policy(.forwardAutoCont), [], .stopped),
            Step(.operatorClear, [persist(flag: false, stoppedByBroker: false), cleared(.operator), .contVM], .recovered),
        ])
    }

    @Test func operatorContThenStopInBetweenMeansNoCont() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .vmStopped, .hostRecoveryFailed])
        expectTranscript(&machine, [
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.vmStopped, [], .linkError),
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
        ])
    }

    @Test func operatorStopOnTheBrokersPauseMeansNoCont() {
        // QEMU emits no STOP for a `stop` on a paused VM: the broker learns it from the command.
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.clientStop, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
        ])
    }

    @Test func clientStopRacingTheBrokersStopMeansNoCont() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr])
        expectTranscript(&machine, [
            Step(.clientStop, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.vmStopped, [], .linkError),
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
        ])
    }

    @Test func stopBySomeoneElseIsNeverContinued() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal])
        expectTranscript(&machine, [
            Step(.vmStopped, [], .linkError),
            Step(.sbr, [linkReset(flag: true, .none)], .linkError),
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
        ])
    }

    @Test func clearWhileTheBrokersStopIsInFlightContsWhenItLands() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr])
        expectTranscript(&machine, [
            Step(.operatorClear, [persist(flag: false, stoppedByBroker: true), cleared(.operator)], .recovered),
            Step(.vmStopped, [persist(flag: false, stoppedByBroker: false), .contVM], .recovered),
            Step(.vmResumed, [], .recovered),
        ])
    }

    @Test func clearWhileStopInFlightWithoutAutoContLeavesItPaused() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr])
        expectTranscript(&machine, [
            Step(.operatorClear, [persist(flag: false, stoppedByBroker: true), cleared(.operator)]),
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
            Step(.hostRecoveryDone, [hostRecovered(flag: true), .contVM], .stopped),
        ])
    }

    @Test func systemResetOfTheBrokersPauseAfterRecoveryClearsAndHandsThePauseOver() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped, .hostRecoveryDone])
        expectTranscript(&machine, [
            Step(.systemReset, [persist(flag: false, stoppedByBroker: false), cleared(.vmReset)], .recovered),
            Step(.vmResumed, [], .recovered),
        ])
    }

    @Test func failedRecoveryNeverContsAndKeepsTheFlagAcrossTheResume() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.hostRecoveryFailed, [hostRecoveryFailed(flag: true)], .stopped),
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.systemReset, [], .linkError),
        ])
    }
}
