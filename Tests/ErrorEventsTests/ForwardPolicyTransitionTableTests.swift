import ErrorEvents
import Testing

/// Every state × every input under the default policy (`forward`, no auto-cont).
/// The other policies are tested by their differences, in their own files.
@Suite struct ForwardPolicyTransitionTableTests {
    private static let c = receiverError
    private static let n = completionTimeout
    private static let f = dlp

    /// From a state without the flag, errors and resets behave the same whatever the run state.
    private static func withoutFlag(_ state: MachineState, clearsTo cleared: DeviceErrorStatus) -> [Transition] {
        let own = state.statusWithoutFlag
        return [
            Transition(state, .correctable, [forwarded(c, flag: false)], own),
            Transition(state, .nonFatal, [forwarded(n, flag: false)], own == .healthy || own == .recovered ? .nonFatal : own),
            Transition(state, .fatal, [persist(flag: true, stoppedByBroker: false), forwarded(f, flag: true)], .linkError),
            Transition(state, .sbr, [linkReset(flag: false, .none)], own),
            Transition(state, .hotReset, [linkReset(flag: false, .none, origin: .guestHotReset)], own),
            Transition(state, .systemReset, [], own),
            Transition(state, .vmStopped, [], own),
            Transition(state, .vmResumed, [], own),
            Transition(state, .clientStop, [], own),
            Transition(state, .hostRecoveryStarted, [], own),
            Transition(state, .hostRecoveryDone, [hostRecovered(flag: false)], cleared),
            Transition(state, .hostRecoveryFailed, [hostRecoveryFailed(flag: false)], own),
            Transition(state, .operatorClear, [], cleared),
        ]
    }

    /// Errors while the flag is set: reported with the flag, forwarded, nothing persisted.
    private static func errorsWithFlag(_ state: MachineState, stay status: DeviceErrorStatus) -> [Transition] {
        [
            Transition(state, .correctable, [forwarded(c, flag: true)], status),
            Transition(state, .nonFatal, [forwarded(n, flag: true)], status),
            Transition(state, .fatal, [forwarded(f, flag: true)], status),
        ]
    }

    static let transitions: [Transition] =
        withoutFlag(.healthyRunning, clearsTo: .healthy)
        + withoutFlag(.healthyPaused, clearsTo: .healthy)
        + withoutFlag(.nonFatalRunning, clearsTo: .recovered)
        + withoutFlag(.nonFatalPaused, clearsTo: .recovered)
        + withoutFlag(.recoveredRunning, clearsTo: .recovered)
        + withoutFlag(.recoveredPaused, clearsTo: .recovered)
        // Flag set, VM running: the guest's link reset stops it.
        + errorsWithFlag(.linkErrorRunning, stay: .linkError)
        + [
            Transition(.linkErrorRunning, .sbr, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop)], .stopped),
            Transition(.linkErrorRunning, .hotReset, [.stopVM, persist(flag: true, stoppedByBroker: true), linkReset(flag: true, .stop, origin: .guestHotReset)], .stopped),
            Transition(.linkErrorRunning, .systemReset, [], .linkError),
            Transition(.linkErrorRunning, .vmStopped, [], .linkError),
            Transition(.linkErrorRunning, .vmResumed, [], .linkError),
            Transition(.linkErrorRunning, .clientStop, [], .linkError),
            // Host recovery is recorded; the device was reset under the guest, so the flag stays.
            Transition(.linkErrorRunning, .hostRecoveryStarted, [], .linkError),
            Transition(.linkErrorRunning, .hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
            Transition(.linkErrorRunning, .hostRecoveryFailed, [hostRecoveryFailed(flag: true)], .linkError),
            Transition(.linkErrorRunning, .operatorClear, [persist(flag: false, stoppedByBroker: false), cleared(.operator)], .recovered),
        ]
        // Flag set, VM paused by someone else: nothing to stop, nothing to claim.
        + errorsWithFlag(.linkErrorPaused, stay: .linkError)
        + [
            Transition(.linkErrorPaused, .sbr, [linkReset(flag: true, .none)], .linkError),
            Transition(.linkErrorPaused, .hotReset, [linkReset(flag: true, .none, origin: .guestHotReset)], .linkError),
            Transition(.linkErrorPaused, .systemReset, [], .linkError),
            Transition(.linkErrorPaused, .vmStopped, [], .linkError),
            Transition(.linkErrorPaused, .vmResumed, [], .linkError),
            Transition(.linkErrorPaused, .clientStop, [], .linkError),
            Transition(.linkErrorPaused, .hostRecoveryStarted, [], .linkError),
            Transition(.linkErrorPaused, .hostRecoveryDone, [hostRecovered(flag: true)], .linkError),
            Transition(.linkErrorPaused, .hostRecoveryFailed, [hostRecoveryFailed(flag: true)], .linkError),
            Transition(.linkErrorPaused, .operatorClear, [persist(flag: false, stoppedByBroker: false), cleared(.operator)], .recovered),
        ]
        // The broker's stop is in flight.
        + errorsWithFlag(.stopping, stay: .stopped)
        + [
            Transition(.stopping, .sbr, [linkReset(flag: true, .none)], .stopped),
            Transition(.stopping, .hotReset, [linkReset(flag: true, .none, origin: .guestHotReset)], .stopped),
            Transition(.stopping, .systemReset, [], .stopped),
            Transition(.stopping, .vmStopped, [], .stopped),
            // Resumed before its STOP landed: the guest goes on with its link reset.
            Transition(.stopping, .vmResumed, clearedByResume, .recovered),
            Transition(.stopping, .clientStop, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Transition(.stopping, .hostRecoveryStarted, [], .stopped),
            Transition(.stopping, .hostRecoveryDone, [hostRecovered(flag: true)], .stopped),
            Transition(.stopping, .hostRecoveryFailed, [hostRecoveryFailed(flag: true)], .stopped),
            Transition(.stopping, .operatorClear, [persist(flag: false, stoppedByBroker: true), cleared(.operator)], .recovered),
        ]
        // Paused by the broker, untouched since.
        + errorsWithFlag(.stoppedByBroker, stay: .stopped)
        + [
            Transition(.stoppedByBroker, .sbr, [linkReset(flag: true, .none)], .stopped),
            Transition(.stoppedByBroker, .hotReset, [linkReset(flag: true, .none, origin: .guestHotReset)], .stopped),
            Transition(.stoppedByBroker, .systemReset, [], .stopped),
            Transition(.stoppedByBroker, .vmStopped, [persist(flag: true, stoppedByBroker: false)], .linkError),
            // The VM stopped for the guest's link reset resumes: the guest re-initialises the device.
            Transition(.stoppedByBroker, .vmResumed, clearedByResume, .recovered),
            Transition(.stoppedByBroker, .clientStop, [persist(flag: true, stoppedByBroker: false)], .linkError),
            Transition(.stoppedByBroker, .hostRecoveryStarted, [], .stopped),
            Transition(.stoppedByBroker, .hostRecoveryDone, [hostRecovered(flag: true)], .stopped),
            Transition(.stoppedByBroker, .hostRecoveryFailed, [hostRecoveryFailed(flag: true)], .stopped),
            Transition(.stoppedByBroker, .operatorClear, [persist(flag: false, stoppedByBroker: false), cleared(.operator)], .recovered),
        ]
        // Flag cleared while the broker's stop was in flight.
        + [
            Transition(.clearedWhileStopping, .correctable, [forwarded(c, flag: false)], .recovered),
            Transition(.clearedWhileStopping, .nonFatal, [forwarded(n, flag: false)], .recovered),
            Transition(.clearedWhileStopping, .fatal, [persist(flag: true, stoppedByBroker: true), forwarded(f, flag: true)], .stopped),
            Transition(.clearedWhileStopping, .sbr, [linkReset(flag: false, .none)], .recovered),
            Transition(.clearedWhileStopping, .hotReset, [linkReset(flag: false, .none, origin: .guestHotReset)], .recovered),
            Transition(.clearedWhileStopping, .systemReset, [], .recovered),
            Transition(.clearedWhileStopping, .vmStopped, [persist(flag: false, stoppedByBroker: false)], .recovered),
            Transition(.clearedWhileStopping, .vmResumed, [persist(flag: false, stoppedByBroker: false)], .recovered),
            Transition(.clearedWhileStopping, .clientStop, [persist(flag: false, stoppedByBroker: false)], .recovered),
            Transition(.clearedWhileStopping, .hostRecoveryStarted, [], .recovered),
            Transition(.clearedWhileStopping, .hostRecoveryDone, [hostRecovered(flag: false)], .recovered),
            Transition(.clearedWhileStopping, .hostRecoveryFailed, [hostRecoveryFailed(flag: false)], .recovered),
            Transition(.clearedWhileStopping, .operatorClear, [], .recovered),
        ]

    @Test(arguments: transitions)
    func transition(_ transition: Transition) {
        var machine = transition.from.machine(policy: .forward)
        let actions = machine.apply(transition.input)
        #expect(actions == transition.expected)
        #expect(machine.status == transition.status)
    }

    @Test func tableCoversEveryStateAndInput() {
        for state in MachineState.allCases {
            #expect(Self.transitions.filter { $0.from == state }.count == 13, "\(state)")
        }
    }
}

extension MachineState {
    /// The status of the states without the flag (the table's starting points).
    var statusWithoutFlag: DeviceErrorStatus {
        switch self {
        case .healthyRunning, .healthyPaused: .healthy
        case .nonFatalRunning, .nonFatalPaused: .nonFatal
        case .recoveredRunning, .recoveredPaused, .clearedWhileStopping: .recovered
        case .linkErrorRunning, .linkErrorPaused: .linkError
        case .stopping, .stoppedByBroker: .stopped
        }
    }
}

@Suite struct MachineStateFixtureTests {
    /// The table's starting points really are the states they are named after.
    @Test(arguments: MachineState.allCases)
    func prefixReachesState(_ state: MachineState) {
        let machine = state.machine(policy: .forward)
        #expect(machine.status == state.statusWithoutFlag)
        let expected: PersistedDeviceState = switch state {
        case .healthyRunning, .healthyPaused, .nonFatalRunning, .nonFatalPaused,
            .recoveredRunning, .recoveredPaused:
            .clean
        case .linkErrorRunning, .linkErrorPaused:
            PersistedDeviceState(linkError: true, stoppedByBroker: false)
        case .stopping, .stoppedByBroker:
            PersistedDeviceState(linkError: true, stoppedByBroker: true)
        case .clearedWhileStopping:
            PersistedDeviceState(linkError: false, stoppedByBroker: true)
        }
        #expect(machine.persistedState == expected)
    }
}
