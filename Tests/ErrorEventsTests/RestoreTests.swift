import ErrorEvents
import Testing

/// The flag survives a broker restart; a broker pause survives only if nobody resumed it.
@Suite struct RestoreTests {
    @Test func cleanDeviceRestoresHealthy() {
        let machine = DeviceErrorMachine(restoring: .clean, vmRunning: true)
        #expect(machine.status == .healthy)
        #expect(machine.persistedState == .clean)
    }

    @Test func flagSurvivesAndTheNextLinkResetStops() {
        var machine = DeviceErrorMachine(
            restoring: PersistedDeviceState(linkError: true, stoppedByBroker: false), vmRunning: true)
        #expect(machine.status == .linkError)
        expectTranscript(&machine, [
            Step(.sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
        ])
    }

    @Test func brokerPauseSurvivesWhileTheVMIsStillPaused() {
        var machine = DeviceErrorMachine(
            policy: .forwardAutoCont,
            restoring: PersistedDeviceState(linkError: true, stoppedByBroker: true), vmRunning: false)
        #expect(machine.status == .stopped)
        expectTranscript(&machine, [
            Step(.hostRecoveryDone, [hostRecovered(flag: true), .contVM], .stopped),
            // Under `forward` the broker only stops for a guest link reset.
            Step(.vmResumed, clearedByResume, .recovered),
        ])
    }

    @Test func brokerPauseIsDroppedWhenTheVMWasResumedMeanwhile() {
        let stored = PersistedDeviceState(linkError: true, stoppedByBroker: true)
        var machine = DeviceErrorMachine(policy: .forwardAutoCont, restoring: stored, vmRunning: true)
        #expect(machine.status == .linkError)
        // The I/O layer stores the corrected state.
        #expect(machine.persistedState == PersistedDeviceState(linkError: true, stoppedByBroker: false))
        expectTranscript(&machine, [
            Step(.hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
        ])
    }

    @Test func flaggedWhilePausedBySomeoneElseIsNotClaimed() {
        var machine = DeviceErrorMachine(
            policy: .forwardAutoCont,
            restoring: PersistedDeviceState(linkError: true, stoppedByBroker: false), vmRunning: false)
        expectTranscript(&machine, [
            Step(.sbr, [linkReset(flag: true, .none)], .linkError),
            Step(.operatorClear, [persist(flag: false, stoppedByBroker: false), cleared(.operator)], .recovered),
        ])
    }

    @Test func brokerPauseWithoutFlagIsNotKept() {
        // Stored when the flag was cleared while the broker's stop was in flight.
        let machine = DeviceErrorMachine(
            policy: .forwardAutoCont,
            restoring: PersistedDeviceState(linkError: false, stoppedByBroker: true), vmRunning: false)
        #expect(machine.status == .healthy)
        #expect(machine.persistedState == .clean)
    }

    @Test func countersAreRestored() {
        var machine = DeviceErrorMachine(
            restoring: .clean, vmRunning: true, counters: DeviceErrorCounters(correctable: 1, nonFatal: 2, fatal: 3))
        _ = machine.hostError(dlp)
        #expect(machine.counters == DeviceErrorCounters(correctable: 1, nonFatal: 2, fatal: 4))
    }
}
