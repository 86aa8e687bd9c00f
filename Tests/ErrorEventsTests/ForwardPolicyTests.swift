import ErrorEvents
import Testing

/// `forward` (the default): report, inject into the guest, flag on fatal, stop on a guest
/// link reset while flagged.
@Suite struct ForwardPolicyTests {
    @Test func defaultPolicyIsForwardWithoutAutoCont() {
        #expect(DevicePolicy.default == DevicePolicy(.forward, autoCont: false))
        #expect(DeviceErrorMachine().policy == .default)
    }

    @Test func fatalErrorThenGuestLinkResetStopsTheVM() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .forward), forwarded(dlp)], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
            Step(.vmStopped, [], .stopped),
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered)], .recovered),
        ])
    }

    @Test func guestHotResetCountsAsALinkReset() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.hostError(surpriseDown), [persist(flag: true, stoppedByBroker: false), reported(surpriseDown, flag: true, .forward), forwarded(surpriseDown)]),
            Step(.hotReset, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop, origin: .guestHotReset)], .stopped),
        ])
    }

    @Test func nonFatalErrorIsForwardedWithoutFlag() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.nonFatal, [reported(completionTimeout, flag: false, .forward), forwarded(completionTimeout)], .nonFatal),
            // The guest's driver may still reset the link; without the flag that is its business.
            Step(.sbr, [linkReset(flag: false, .none)], .nonFatal),
            Step(.hostRecoveryDone, [], .recovered),
        ])
    }

    @Test func correctableErrorIsForwardedAndChangesNothing() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.correctable, [reported(receiverError, flag: false, .forward), forwarded(receiverError)], .healthy),
        ])
        #expect(machine.persistedState == .clean)
    }

    @Test func nonFatalThenFatal() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.nonFatal, [reported(completionTimeout, flag: false, .forward), forwarded(completionTimeout)], .nonFatal),
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .forward), forwarded(dlp)], .linkError),
            // A later non-fatal error does not lower the state.
            Step(.nonFatal, [reported(completionTimeout, flag: true, .forward), forwarded(completionTimeout)], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
    }

    @Test func fatalWhileStoppedByTheBrokerIsForwardedButDoesNotStopAgain() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.fatal, [reported(dlp, flag: true, .forward), forwarded(dlp)], .stopped),
        ])
    }

    @Test func secondLinkResetWhileStoppingOrStoppedDoesNotStopAgain() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .forward), forwarded(dlp)]),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)]),
            Step(.sbr, [linkReset(flag: true, .none)], .stopped),
            Step(.vmStopped, [], .stopped),
            Step(.sbr, [linkReset(flag: true, .none)], .stopped),
        ])
    }

    @Test func operatorResumeKeepsTheFlagAndTheNextLinkResetStopsAgain() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
        #expect(machine.linkError)
    }

    @Test func systemResetWhileFlaggedNeitherStopsNorClears() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal])
        expectTranscript(&machine, [
            Step(.systemReset, [], .linkError),
            // The rebooted guest resets the link again: the host link is still broken.
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
            Step(.vmStopped, [], .stopped),
            Step(.systemReset, [], .stopped),
        ])
    }

    @Test func hostRecoveryFailedKeepsTheFlag() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal])
        expectTranscript(&machine, [
            Step(.hostRecoveryFailed, [], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
            Step(.vmStopped, []),
            Step(.hostRecoveryFailed, [], .stopped),
        ])
        #expect(machine.persistedState == PersistedDeviceState(linkError: true, stoppedByBroker: true))
    }

    @Test func hostRecoveryBeforeTheGuestResetsMeansNoStop() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal])
        expectTranscript(&machine, [
            Step(.hostRecoveryDone, [persist(flag: false, stoppedByBroker: false), cleared(.hostRecovered)], .recovered),
            Step(.sbr, [linkReset(flag: false, .none)], .recovered),
        ])
    }

    @Test func clearWhileRunningClearsWithoutCont() {
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, after: [.fatal])
        expectTranscript(&machine, [
            Step(.operatorClear, [persist(flag: false, stoppedByBroker: false), cleared(.operator)], .recovered),
            Step(.operatorClear, [], .recovered),
        ])
    }

    @Test func clearWithoutFlagAnnouncesNothing() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.operatorClear, [], .healthy),
            Step(.nonFatal, [reported(completionTimeout, flag: false, .forward), forwarded(completionTimeout)], .nonFatal),
            Step(.operatorClear, [], .recovered),
        ])
    }

    @Test func bareEventfdSignalForwardsTheDefaultBit() {
        let bare = HostError(severity: .fatal, source: .eventfd)
        var machine = DeviceErrorMachine(policy: .forward)
        let actions = machine.hostError(bare)
        #expect(actions == [persist(flag: true, stoppedByBroker: false), reported(bare, flag: true, .forward), .forwardToGuest(GuestAERError(severity: .fatal, status: 0x10))])
    }

    @Test func linkResetWhileFlaggedAndPausedBySomeoneElseDoesNotStop() {
        var machine = DeviceErrorMachine(policy: .forward, vmRunning: false)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), reported(dlp, flag: true, .forward), forwarded(dlp)], .linkError),
            Step(.sbr, [linkReset(flag: true, .none)], .linkError),
        ])
    }
}
