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
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), forwarded(dlp, flag: true)], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
            Step(.vmStopped, [], .stopped),
            // The kernel's recovery reset the device under the guest: the flag stays.
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .stopped),
            // The operator resumes; the guest finishes its link reset and the flag clears.
            Step(.vmResumed, clearedByResume, .recovered),
        ])
        #expect(machine.hostRecovery == .successful)
    }

    @Test func guestHotResetCountsAsALinkReset() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.hostError(surpriseDown), [persist(flag: true, stoppedByBroker: false), forwarded(surpriseDown, flag: true)]),
            Step(.hotReset, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop, origin: .guestHotReset)], .stopped),
        ])
    }

    @Test func nonFatalErrorIsForwardedWithoutFlag() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.nonFatal, [forwarded(completionTimeout, flag: false)], .nonFatal),
            // The guest's driver may still reset the link; without the flag that is its business.
            Step(.sbr, [linkReset(flag: false, .none)], .nonFatal),
            Step(.hostRecoveryDone, [hostRecovered(flag: false)], .recovered),
        ])
    }

    @Test func correctableErrorIsForwardedAndChangesNothing() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.correctable, [forwarded(receiverError, flag: false)], .healthy),
        ])
        #expect(machine.persistedState == .clean)
    }

    @Test func nonFatalThenFatal() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.nonFatal, [forwarded(completionTimeout, flag: false)], .nonFatal),
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), forwarded(dlp, flag: true)], .linkError),
            // A later non-fatal error does not lower the state.
            Step(.nonFatal, [forwarded(completionTimeout, flag: true)], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
    }

    @Test func fatalWhileStoppedByTheBrokerIsForwardedButDoesNotStopAgain() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.fatal, [forwarded(dlp, flag: true)], .stopped),
        ])
    }

    @Test func secondLinkResetWhileStoppingOrStoppedDoesNotStopAgain() {
        var machine = DeviceErrorMachine(policy: .forward)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), forwarded(dlp, flag: true)]),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)]),
            Step(.sbr, [linkReset(flag: true, .none)], .stopped),
            Step(.vmStopped, [], .stopped),
            Step(.sbr, [linkReset(flag: true, .none)], .stopped),
        ])
    }

    @Test func operatorResumeAfterAFailedRecoveryKeepsTheFlagAndTheNextLinkResetStopsAgain() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped, .hostRecoveryFailed])
        expectTranscript(&machine, [
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
        #expect(machine.linkError)
    }

    @Test func resumeOfAPauseSomeoneElseMadeKeepsTheFlag() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .vmStopped])
        expectTranscript(&machine, [
            Step(.vmResumed, [], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
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

    @Test func aRebootWhileStoppedForTheLinkResetKeepsTheFlagAcrossTheResume() {
        // Rebooted before the host recovered: the guest will not finish its link reset.
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .sbr, .vmStopped])
        expectTranscript(&machine, [
            Step(.systemReset, [], .stopped),
            Step(.vmResumed, [persist(flag: true, stoppedByBroker: false)], .linkError),
        ])
    }

    @Test func systemResetAfterHostRecoveryClearsTheFlag() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .hostRecoveryDone])
        expectTranscript(&machine, [
            Step(.systemReset, [persist(flag: false, stoppedByBroker: false), cleared(.vmReset)], .recovered),
            Step(.sbr, [linkReset(flag: false, .none)], .recovered),
        ])
    }

    @Test func systemResetAfterAFailedRecoveryKeepsTheFlag() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal, .hostRecoveryDone, .fatal, .hostRecoveryFailed])
        expectTranscript(&machine, [
            Step(.systemReset, [], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
        #expect(machine.hostRecovery == .failed)
    }

    @Test func aNewErrorStartsANewHostRecovery() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.nonFatal, .hostRecoveryDone])
        #expect(machine.hostRecovery == .successful)
        expectTranscript(&machine, [
            Step(.correctable, [forwarded(receiverError, flag: false)]),
        ])
        #expect(machine.hostRecovery == .successful)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), forwarded(dlp, flag: true)]),
            // A reset now would not clear: this error's recovery has not finished.
            Step(.systemReset, [], .linkError),
            Step(.hostRecoveryStarted, [], .linkError),
        ])
        #expect(machine.hostRecovery == .inProgress)
    }

    @Test func repeatedRecoveryNewsIsAnnouncedOnce() {
        // SUCCESSFUL_RECOVERY, then a DEVICE_ONLINE change for the same recovery.
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal])
        expectTranscript(&machine, [
            Step(.hostRecoveryDone, [hostRecovered(flag: true)]),
            Step(.hostRecoveryDone, []),
            Step(.hostRecoveryFailed, [hostRecoveryFailed(flag: true)]),
            Step(.hostRecoveryFailed, []),
        ])
    }

    @Test func hostRecoveryFailedKeepsTheFlag() {
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal])
        expectTranscript(&machine, [
            Step(.hostRecoveryFailed, [hostRecoveryFailed(flag: true)], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
            Step(.vmStopped, []),
            Step(.hostRecoveryFailed, [], .stopped),
        ])
        #expect(machine.persistedState == PersistedDeviceState(linkError: true, stoppedByBroker: true))
    }

    @Test func hostRecoveryBeforeTheGuestResetsStillStops() {
        // SPEC 10: SUCCESSFUL_RECOVERY comes ~0.16 s after the error, but vfio-pci left the
        // device reset under the guest, whose view is as broken as before.
        var machine = DeviceErrorMachine(policy: .forward, after: [.fatal])
        expectTranscript(&machine, [
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
            Step(.vmStopped, [], .stopped),
            Step(.vmResumed, clearedByResume, .recovered),
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
            Step(.nonFatal, [forwarded(completionTimeout, flag: false)], .nonFatal),
            Step(.operatorClear, [], .recovered),
        ])
    }

    @Test func bareEventfdSignalForwardsTheDefaultBit() {
        let bare = HostError(severity: .fatal, source: .eventfd)
        var machine = DeviceErrorMachine(policy: .forward)
        let actions = machine.hostError(bare)
        #expect(actions == [persist(flag: true, stoppedByBroker: false), .forwardToGuest(GuestAERError(severity: .fatal, status: 0x10), then: PCIErrorEvent(bare, linkError: true, action: .forward))])
    }

    @Test func linkResetWhileFlaggedAndPausedBySomeoneElseDoesNotStop() {
        var machine = DeviceErrorMachine(policy: .forward, vmRunning: false)
        expectTranscript(&machine, [
            Step(.fatal, [persist(flag: true, stoppedByBroker: false), forwarded(dlp, flag: true)], .linkError),
            Step(.sbr, [linkReset(flag: true, .none)], .linkError),
        ])
    }
}
