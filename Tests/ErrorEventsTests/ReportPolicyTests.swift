import ErrorEvents
import Testing

/// `report`: events only. The flag is still recorded on a fatal error, as information for
/// management (and so a later switch to `forward`/`stop` protects the device at once).
@Suite struct ReportPolicyTests {
    @Test func errorsAreReportedNeverForwarded() {
        var machine = DeviceErrorMachine(policy: .report)
        expectTranscript(&machine, [
            Step(.correctable, [reported(receiverError, flag: false, .none)], .healthy),
            Step(.nonFatal, [reported(completionTimeout, flag: false, .none)], .nonFatal),
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .none)], .linkError),
        ])
    }

    @Test func guestLinkResetWhileFlaggedIsReportedNeverStops() {
        var machine = DeviceErrorMachine(policy: .report, after: [.fatal])
        expectTranscript(&machine, [
            Step(.sbr, [linkReset(flag: true, .none)], .linkError),
            Step(.hotReset, [linkReset(flag: true, .none, origin: .guestHotReset)], .linkError),
            Step(.fatal, [reported(dlp, flag: true, .none)], .linkError),
        ])
    }

    @Test func flagIsClearedByAResetAfterRecoveryOrByTheOperator() {
        var machine = DeviceErrorMachine(policy: .report)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .none)]),
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
            Step(.systemReset, [persist(flag: false, stoppedByBroker: false), cleared(.vmReset)], .recovered),
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .none)], .linkError),
            Step(.operatorClear, [persist(flag: false, stoppedByBroker: false), cleared(.operator)], .recovered),
        ])
    }

    @Test func autoContNeverContsWhatReportNeverStopped() {
        var machine = DeviceErrorMachine(policy: DevicePolicy(.report, autoCont: true))
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .none)]),
            Step(.vmStopped, [], .linkError),  // management pauses the VM itself
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
            Step(.vmResumed, [], .linkError),
        ])
    }
}
