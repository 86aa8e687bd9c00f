import ErrorEvents
import Testing

/// `stop`: report, never inject, stop the VM at once on any fatal error.
@Suite struct StopPolicyTests {
    @Test func fatalErrorStopsAtOnce() {
        var machine = DeviceErrorMachine(policy: .stop)
        expectTranscript(&machine, [
            Step(.fatal, [.stopVM, persist(flag: true, stoppedByBroker: true), reported(dlp, flag: true, .stop)], .stopped),
            Step(.vmStopped, [], .stopped),
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .stopped),
            // Stopped for the error, not for a guest link reset: the guest was never told,
            // so an operator's resume leaves the flag for the next link reset.
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
        ])
    }

    @Test func autoContResumesOnceTheHostRecoveredAndKeepsTheFlag() {
        var machine = DeviceErrorMachine(policy: .stopAutoCont)
        expectTranscript(&machine, [
            Step(.fatal, [.stopVM, persist(flag: true, stoppedByBroker: true), reported(dlp, flag: true, .stop)]),
            Step(.vmStopped, [], .stopped),
            Step(.hostRecoveryDone, [hostRecovered(flag: true), .contVM], .stopped),
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
        ])
    }

    @Test func nonFatalAndCorrectableAreReportedOnly() {
        var machine = DeviceErrorMachine(policy: .stop)
        expectTranscript(&machine, [
            Step(.correctable, [reported(receiverError, flag: false, .none)], .healthy),
            Step(.nonFatal, [reported(completionTimeout, flag: false, .none)], .nonFatal),
        ])
    }

    @Test func fatalWhileAlreadyStoppingOrStoppedDoesNotStopAgain() {
        var machine = DeviceErrorMachine(policy: .stop)
        expectTranscript(&machine, [
            Step(.fatal, [.stopVM, persist(flag: true, stoppedByBroker: true), reported(dlp, flag: true, .stop)]),
            Step(.hostError(surpriseDown), [reported(surpriseDown, flag: true, .none)], .stopped),
            Step(.vmStopped, [], .stopped),
            Step(.fatal, [reported(dlp, flag: true, .none)], .stopped),
            Step(.sbr, [linkReset(flag: true, .none)], .stopped),
        ])
    }

    @Test func fatalWhilePausedBySomeoneElseNeitherStopsNorClaims() {
        var machine = DeviceErrorMachine(policy: .stopAutoCont)
        expectTranscript(&machine, [
            Step(.vmStopped, [], .healthy),
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .none)], .linkError),
            // The operator's pause is not the broker's to undo.
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
        ])
    }

    @Test func fatalAfterOperatorResumeStopsAgain() {
        var machine = DeviceErrorMachine(policy: .stop, after: [.fatal, .vmStopped])
        expectTranscript(&machine, [
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.fatal, [.stopVM, persist(flag: true, stoppedByBroker: true), reported(dlp, flag: true, .stop)], .stopped),
        ])
    }

    @Test func guestLinkResetWhileFlaggedAfterOperatorResumeStops() {
        // The guest was never told (nothing is forwarded) but may still reset the link.
        var machine = DeviceErrorMachine(policy: .stop, after: [.fatal, .vmStopped, .vmResumed])
        expectTranscript(&machine, [
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
    }

    @Test func fatalAfterClearWhileStoppingDoesNotStopTwice() {
        var machine = DeviceErrorMachine(policy: .stop)
        expectTranscript(&machine, [
            Step(.fatal, [.stopVM, persist(flag: true, stoppedByBroker: true), reported(dlp, flag: true, .stop)]),
            Step(.operatorClear, [persist(flag: false, stoppedByBroker: true), cleared(.operator)], .recovered),
            Step(.fatal, [persist(flag: true, stoppedByBroker: true), reported(dlp, flag: true, .none)], .stopped),
            Step(.vmStopped, [], .stopped),
        ])
    }

    @Test func systemResetNeverStops() {
        var machine = DeviceErrorMachine(policy: .stop, after: [.fatal, .vmStopped, .vmResumed])
        expectTranscript(&machine, [
            Step(.systemReset, [], .linkError),
        ])
    }
}
