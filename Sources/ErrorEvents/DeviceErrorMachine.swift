/// The error state of one watched device, as a value: every input is a `mutating func`
/// returning the `DeviceActions` the I/O layer runs (postgres-nio's state-machine shape).
///
/// It tracks three things: the device's health as the guest must see it (with the
/// link-error flag), the host's own recovery of the device, and whether the VM is paused
/// by the broker's own `stop`, which is the only pause `auto-cont` may undo. Any STOP or
/// RESUME the broker did not cause ends that ownership (as does a client `stop` command,
/// which QEMU does not signal on a paused VM), so an operator's `stop`/`cont` is never
/// overridden.
///
/// Host recovery never clears the flag by itself: the kernel's recovery resets the device
/// under the guest (SPEC 10). The flag clears when the guest's link reset has stopped the
/// VM and the VM is resumed, when the VM is reset after the host recovered, or by the
/// operator; after a failed host recovery only the operator clears it.
package struct DeviceErrorMachine: Sendable {
    /// The VM's run state as the STOP and RESUME events told it.
    private enum RunState: Sendable {
        case running
        case paused
    }

    /// Why the broker stopped the VM: only a stop for the guest's own link reset ends with
    /// the guest re-initialising the device when it resumes.
    private enum StopCause: Sendable {
        /// Held for the device's sake: a fatal error (policy `stop`), or a link reset whose
        /// guest was then rebooted before the host recovered.
        case deviceBroken
        /// Held while the guest resets the link.
        case linkReset
    }

    private enum State: Sendable {
        /// No error but correctable ones since attach.
        case healthy(RunState)
        /// A non-fatal error; the host has not reported recovery yet.
        case nonFatalSeen(RunState)
        /// Flag set; the broker holds no pause (it did not stop the VM, or someone resumed
        /// or stopped it since).
        case linkError(RunState)
        /// Flag set; the broker sent `stop` and its STOP event has not arrived yet.
        case stopping(StopCause)
        /// Flag set; the VM is paused by the broker and nobody has touched it since.
        case stoppedByBroker(StopCause)
        /// The flag was cleared while the broker's `stop` was still in flight: when its
        /// STOP arrives the pause is the broker's to undo (auto-cont) or hand over.
        case clearedWhileStopping
        /// The flag was cleared (or a non-fatal error recovered by the host).
        case recovered(RunState)
    }

    private var state: State
    /// A broker stop restored from disk before the VM's run state was known: judged by
    /// `runStateLearnt`; until then the machine runs on the assumed run state.
    private var restoredStop: PersistedDeviceState?
    /// The host's recovery since the last uncorrectable error.
    package private(set) var hostRecovery: HostRecovery = .none
    package private(set) var policy: DevicePolicy
    package private(set) var counters: DeviceErrorCounters

    /// A machine for a device with nothing persisted.
    package init(policy: DevicePolicy = .default, vmRunning: Bool = true) {
        self.init(policy: policy, restoring: .clean, vmRunning: vmRunning)
    }

    /// A machine restored after a broker restart. `vmRunning` is the VM's state now
    /// (`query-status`). A persisted broker stop is kept only while the VM is still paused
    /// and the flag still set: if the VM runs, someone resumed it while the broker was away,
    /// and without the flag there is nothing a `cont` would wait for. When the result
    /// differs from what was stored, `persistedState` says what to store now.
    package init(
        policy: DevicePolicy = .default, restoring persisted: PersistedDeviceState,
        vmRunning: Bool, counters: DeviceErrorCounters = DeviceErrorCounters()
    ) {
        let run: RunState = vmRunning ? .running : .paused
        if !persisted.linkError {
            state = .healthy(run)
        } else if persisted.stoppedByBroker && !vmRunning {
            state = .stoppedByBroker(policy.stopsOnFatalError ? .deviceBroken : .linkReset)
        } else {
            state = .linkError(run)
        }
        self.policy = policy
        self.counters = counters
    }

    /// A machine restored while the VM's run state may not be known yet (a broker start,
    /// before `query-status` answers). A stored broker stop is then kept as stored until
    /// `runStateLearnt` judges it.
    package init(
        policy: DevicePolicy = .default, restoring persisted: PersistedDeviceState,
        vm: VMRunState, counters: DeviceErrorCounters = DeviceErrorCounters()
    ) {
        self.init(policy: policy, restoring: persisted, vmRunning: vm.running, counters: counters)
        if !vm.learnt && persisted.stoppedByBroker { restoredStop = persisted }
    }

    // MARK: - What the rest of the broker reads

    package var persistedState: PersistedDeviceState {
        switch state {
        case .healthy, .nonFatalSeen, .recovered:
            PersistedDeviceState(linkError: false, stoppedByBroker: false)
        case .linkError:
            PersistedDeviceState(linkError: true, stoppedByBroker: false)
        case .stopping, .stoppedByBroker:
            PersistedDeviceState(linkError: true, stoppedByBroker: true)
        case .clearedWhileStopping:
            PersistedDeviceState(linkError: false, stoppedByBroker: true)
        }
    }

    package var linkError: Bool { persistedState.linkError }

    /// What the device's row must say: a restored broker stop still being judged is
    /// written back as it was stored, not as the provisional machine sees it.
    package var storedState: PersistedDeviceState { restoredStop ?? persistedState }

    package var status: DeviceErrorStatus {
        switch state {
        case .healthy: .healthy
        case .nonFatalSeen: .nonFatal
        case .linkError: .linkError
        case .stopping, .stoppedByBroker: .stopped
        case .clearedWhileStopping, .recovered: .recovered
        }
    }

    // MARK: - Inputs

    /// A device error observed on the host. Every one is reported; a fatal one sets the
    /// flag under every policy (under `report` it is information for management).
    package mutating func hostError(_ error: HostError) -> DeviceActions {
        let before = persistedState
        counters.record(error)
        var stop = false
        switch error.severity {
        case .correctable:
            break  // corrected by the hardware: counted and reported, the state stays
        case .nonFatal:
            noteNonFatalError()
        case .fatal:
            stop = noteFatalError()
        }
        // The host's AER core handles every uncorrectable error: a new recovery begins.
        if error.severity != .correctable { hostRecovery = .inProgress }
        let forward = policy.forwardsToGuest ? GuestAERError(severity: error.severity, errors: error.errors) : nil
        let action: PCIErrorEvent.Action = stop ? .stop : (forward == nil ? .none : .forward)
        let event = PCIErrorEvent(error, linkError: linkError, action: action)
        if let forward {  // a forwarding policy never stops on an error
            return actions(since: before, event: .forwardToGuest(forward, then: event))
        }
        return actions(since: before, stop: stop, event: .emitPCIError(event))
    }

    /// The guest reset the device's link (SBR on a bridge above it, or a hot reset).
    /// With the flag set, a running VM is stopped before the guest can use a link the
    /// host considers broken; a VM already paused or already being stopped is left alone.
    package mutating func guestLinkReset(origin: LinkResetOrigin) -> DeviceActions {
        let before = persistedState
        var stop = false
        switch state {
        case .healthy, .nonFatalSeen, .recovered, .clearedWhileStopping:
            break
        case .linkError(let run):
            // A VM paused by someone else cannot be resetting anything now (this is a late
            // trace line): there is nothing to stop, and that pause is not the broker's.
            if policy.stopsOnFlaggedLinkReset && run == .running {
                state = .stopping(.linkReset)
                stop = true
            }
        case .stopping, .stoppedByBroker:
            break  // never a second stop
        }
        let event = LinkResetEvent(linkError: linkError, origin: origin, action: stop ? .stop : .none)
        return actions(since: before, stop: stop, event: .emitLinkReset(event))
    }

    /// A system reset (QMP `RESET`): a reboot is never a link reset and never stops the VM,
    /// and the run state is untouched (a paused VM stays paused across `system_reset`).
    /// Once the host has recovered the device, a rebooting guest starts with it afresh, so
    /// the flag clears; before that (or after a failed recovery) the device is as broken as
    /// before, and the flag stays.
    package mutating func systemReset() -> DeviceActions {
        guard hostRecovery == .successful else {
            // A guest rebooted in the middle of its link reset will not finish it: resuming
            // it no longer re-initialises the device the host has not recovered yet.
            switch state {
            case .stopping(.linkReset): state = .stopping(.deviceBroken)
            case .stoppedByBroker(.linkReset): state = .stoppedByBroker(.deviceBroken)
            case .healthy, .nonFatalSeen, .linkError, .stopping(.deviceBroken), .stoppedByBroker(.deviceBroken),
                .clearedWhileStopping, .recovered:
                break
            }
            return .none
        }
        return clear(reason: .vmReset)
    }

    /// One of the VMM's run-state inputs.
    package mutating func vmEvent(_ event: VMRunEvent) -> DeviceActions {
        switch event {
        case .runStateLearnt(let running): runStateLearnt(running: running)
        case .stopped: vmStopped()
        case .resumed: vmResumed()
        case .reset: systemReset()
        }
    }

    /// The VM's run state from `query-status` at attach. A restored broker stop is judged
    /// now, as if restored knowing it (what happened meanwhile was provisional; only the
    /// counters stay); a changed judgement is persisted. Any other machine takes the state
    /// as a STOP or RESUME.
    package mutating func runStateLearnt(running: Bool) -> DeviceActions {
        guard let restored = restoredStop else { return running ? vmResumed() : vmStopped() }
        self = DeviceErrorMachine(policy: policy, restoring: restored, vmRunning: running, counters: counters)
        return persistedState == restored ? .none : [.persist(persistedState)]
    }

    /// QMP `STOP`, whoever caused it. Only the first STOP after the broker's own `stop`
    /// is the broker's.
    package mutating func vmStopped() -> DeviceActions {
        let before = persistedState
        var cont = false
        switch state {
        case .healthy:
            state = .healthy(.paused)
        case .nonFatalSeen:
            state = .nonFatalSeen(.paused)
        case .linkError:
            state = .linkError(.paused)
        case .recovered:
            state = .recovered(.paused)
        case .stopping(let cause):
            state = .stoppedByBroker(cause)
            // The host may have recovered while the stop was in flight.
            cont = policy.autoCont && hostRecovery == .successful
        case .stoppedByBroker:
            // A STOP while paused means a RESUME was missed: this pause is someone else's.
            state = .linkError(.paused)
        case .clearedWhileStopping:
            // The broker's stop landed after the flag was cleared.
            if policy.autoCont {
                state = .recovered(.running)
                cont = true
            } else {
                state = .recovered(.paused)
            }
        }
        return actions(since: before, cont: cont)
    }

    /// A client's `stop` command went upstream through the broker (never the broker's own).
    /// QEMU emits no STOP for a `stop` on a VM that is already paused (`do_vm_stop` only
    /// signals a running VM), so this is the only way to learn that an operator took over
    /// a pause the broker made; it also settles a client `stop` racing the broker's own.
    package mutating func clientRequestedStop() -> DeviceActions {
        let before = persistedState
        switch state {
        case .healthy, .nonFatalSeen, .linkError, .recovered:
            break  // the STOP event, if the VM was running, updates the run state
        case .stopping:
            state = .linkError(.running)  // whichever STOP comes next is not the broker's alone
        case .stoppedByBroker:
            state = .linkError(.paused)
        case .clearedWhileStopping:
            state = .recovered(.running)
        }
        return actions(since: before)
    }

    /// QMP `RESUME`, whoever caused it. A VM stopped for the guest's link reset goes on to
    /// finish that reset and re-initialise the device, so the flag clears (unless the host
    /// failed to recover it). After any other `cont` the flag stays, and the next guest link
    /// reset stops the VM again.
    package mutating func vmResumed() -> DeviceActions {
        let before = persistedState
        switch state {
        case .stopping(.linkReset), .stoppedByBroker(.linkReset):
            if hostRecovery != .failed {
                state = .recovered(.running)
                return actions(since: before, event: .emitLinkErrorCleared(LinkErrorClearedEvent(reason: .guestLinkReset)))
            }
            state = .linkError(.running)
        case .healthy:
            state = .healthy(.running)
        case .nonFatalSeen:
            state = .nonFatalSeen(.running)
        case .linkError:
            state = .linkError(.running)
        case .recovered:
            state = .recovered(.running)
        case .stopping, .stoppedByBroker:
            state = .linkError(.running)
        case .clearedWhileStopping:
            state = .recovered(.running)
        }
        return actions(since: before)
    }

    /// The host's AER core began handling an uncorrectable error (`BEGIN_RECOVERY`).
    package mutating func hostRecoveryStarted() -> DeviceActions {
        hostRecovery = .inProgress
        return .none
    }

    /// The host reports successful recovery (uevent `SUCCESSFUL_RECOVERY` or `DEVICE_ONLINE`).
    /// Recorded and announced; the flag stays (the device was reset under the guest). A VM
    /// the broker stopped is resumed under auto-cont: the host is ready for the guest again.
    package mutating func hostRecoveryDone() -> DeviceActions {
        guard hostRecovery != .successful else { return .none }  // DEVICE_ONLINE after SUCCESSFUL_RECOVERY
        hostRecovery = .successful
        var cont = false
        switch state {
        case .nonFatalSeen(let run):
            state = .recovered(run)  // no flag: the host's recovery was all it needed
        case .stoppedByBroker:
            cont = policy.autoCont
        case .healthy, .linkError, .stopping, .clearedWhileStopping, .recovered:
            break
        }
        let event = HostRecoveryEvent(result: .successful, linkError: linkError)
        return actions(since: persistedState, event: .emitHostRecovery(event), cont: cont)
    }

    /// The host's recovery failed (uevent `FAILED_RECOVERY`): the device stays broken, so
    /// the flag stays, even across a reboot, until the operator clears it.
    package mutating func hostRecoveryFailed() -> DeviceActions {
        guard hostRecovery != .failed else { return .none }
        hostRecovery = .failed
        return [.emitHostRecovery(HostRecoveryEvent(result: .failed, linkError: linkError))]
    }

    /// Whether a `cont` must be refused: the host failed to recover the flagged device, so it
    /// is gone (an SR-IOV VF whose PF lost VF Enable reads all ones) and a resumed guest
    /// would run on it. The operator's way out is removing the device, or clearing the flag.
    package var forbidsResume: Bool { linkError && hostRecovery == .failed }

    /// `vfio-link-error-clear`. Without a flag there is nothing to announce.
    package mutating func operatorClear() -> DeviceActions {
        clear(reason: .operator)
    }

    /// `vfio-device-set-policy`. Applies to the next inputs only: switching to `stop` does
    /// not stop a VM for an error already reported, and enabling auto-cont does not resume
    /// a VM whose flag was already cleared.
    package mutating func policyChanged(to policy: DevicePolicy) -> DeviceActions {
        self.policy = policy
        return .none
    }

    // MARK: - Transitions shared by inputs

    private mutating func noteNonFatalError() {
        switch state {
        case .healthy(let run), .recovered(let run):
            state = .nonFatalSeen(run)
        case .nonFatalSeen, .linkError, .stopping, .stoppedByBroker, .clearedWhileStopping:
            break  // already as bad or worse
        }
    }

    /// Whether a fatal host error would stop the VM now. A notification that is fatal by
    /// itself asks this before the counters are read, so that its stop is written first.
    package var stopsOnFatalError: Bool {
        switch state {
        case .healthy(let run), .nonFatalSeen(let run), .linkError(let run), .recovered(let run):
            // A VM paused by someone else is not stopped again, nor claimed.
            policy.stopsOnFatalError && run == .running
        case .stopping, .stoppedByBroker, .clearedWhileStopping:
            false
        }
    }

    /// Sets the flag; returns whether the broker must stop the VM now.
    private mutating func noteFatalError() -> Bool {
        switch state {
        case .healthy(let run), .nonFatalSeen(let run), .linkError(let run), .recovered(let run):
            if stopsOnFatalError {
                state = .stopping(.deviceBroken)
                return true
            }
            state = .linkError(run)
            return false
        case .stopping, .stoppedByBroker:
            return false  // flag already set, VM already being held
        case .clearedWhileStopping:
            state = .stopping(.deviceBroken)  // flag set again; the stop already in flight holds the VM
            return false
        }
    }

    private mutating func clear(reason: LinkErrorClearedEvent.Reason) -> DeviceActions {
        let before = persistedState
        var cont = false
        switch state {
        case .healthy, .recovered, .clearedWhileStopping:
            return .none
        case .nonFatalSeen(let run):
            state = .recovered(run)
            return .none
        case .linkError(let run):
            state = .recovered(run)
        case .stopping:
            state = .clearedWhileStopping
        case .stoppedByBroker:
            // Without auto-cont the pause is handed to management for good.
            if policy.autoCont {
                state = .recovered(.running)
                cont = true
            } else {
                state = .recovered(.paused)
            }
        }
        let event = LinkErrorClearedEvent(reason: reason)
        return actions(since: before, event: .emitLinkErrorCleared(event), cont: cont)
    }

    /// Assembles the actions in execution order, persisting only what changed.
    private func actions(
        since before: PersistedDeviceState, stop: Bool = false, event: DeviceAction? = nil, cont: Bool = false
    ) -> DeviceActions {
        var actions = DeviceActions()
        if stop { actions.append(.stopVM) }
        let after = persistedState
        if after != before { actions.append(.persist(after)) }
        if let event { actions.append(event) }
        if cont { actions.append(.contVM) }
        return actions
    }
}
