import ErrorEvents
import KernelTracepoint
import LinkResetTrace
import QMPWire
import VFIOWatch

/// What the VM tells recovery. Each input returns the actions it asks of the VM
/// (`VMBroker.run`); recovery's own eventfds and poll timer hand theirs over directly.
enum RecoveryInput {
    /// The configured and stored devices are watched, inherited eventfds attached.
    case start
    /// The VMM is attached and negotiated (again).
    case vmmAttached(VMMProcess, QEMUVersion?)
    /// The VMM went away: its vfio handles are gone.
    case vmmDetached
    case stop
    /// The VMM's STOP, RESUME and RESET events, and the run state learnt at attach.
    case vmEvent(VMRunEvent)
    /// A client's `stop` went upstream: QEMU sends no STOP for an already paused VM, so
    /// the machines hear it from here (the broker's pause is then the operator's).
    case clientRequestedStop
    /// From the link-reset watcher; `late`: logged by QEMU while the broker was not running.
    case guestLinkReset(device: String, origin: LinkResetOrigin, late: Bool)
    case uevent(UEvent)
    case aerTraceEvent(AERTraceEvent, emittedAt: UInt64?)
    case aerTraceRecordsLost(UInt64)
    /// Whether the process hears `ras:aer_event` (the poll slows down while it does).
    case aerTracepoint(heard: Bool)
    /// Where a device sits, learnt from QOM (`VMBroker.learnPlacement`).
    case placed(device: String, type: String?, parentBus: String?)
    case injectTargetMissing(device: String)
    /// A vfio-pci device found by the QOM walk.
    case discovered(id: String, path: String, host: String?)
    /// QEMU answered a client's `device_add` of a vfio-pci device.
    case vfioDeviceAdded(id: String, host: String)
    /// QEMU's `DEVICE_DELETED`.
    case deviceDeleted(id: String?, path: String?)
    /// QEMU answered the injection of a forwarded error (`VMBroker.forwardToGuest`).
    case forwarded(PCIErrorEvent, device: String, ticket: UInt64, notes: [String], outcome: InjectionOutcome)
}

/// The `vfio-*` commands a client sends, which recovery may refuse.
enum RecoveryCommand {
    case addDevice(id: String, host: String, policy: DevicePolicy, injectAt: String?, errorTrigger: ErrorTriggerMode?)
    case removeDevice(id: String)
    /// Takes ownership of `fd` (closed on any failure).
    case attachEventFD(Int32, device: String, severity: EventFDSeverity)
    case setPolicy(device: String, DevicePolicy, by: VFIORecovery.Cause)
    case clearLinkError(device: String, by: VFIORecovery.Cause)
    /// `x-vfio-inject-error`: a simulated host error, through the same path as a real one.
    case injectHostError(HostError, device: String)
}

extension VFIORecovery {
    func handle(_ input: RecoveryInput) -> [VMAction] {
        outbox.collect {
            switch input {
            case .start: start()
            case .vmmAttached(let process, let version):
                vmm = process
                qemuVersion = version
            case .vmmDetached:
                vmm = nil
                for device in orderedDevices { releaseTrigger(of: device) }
            case .stop: stop()
            case .vmEvent(let event): vmEvent(event)
            case .clientRequestedStop: clientRequestedStop()
            case .guestLinkReset(let id, let origin, let late):
                if let device = devices[id] { guestLinkReset(device, origin: origin, late: late) }
            case .uevent(let event): uevent(event)
            case .aerTraceEvent(let event, let emittedAt): aerTraceEvent(event, emittedAt: emittedAt)
            case .aerTraceRecordsLost(let count): aerTraceRecordsLost(count)
            case .aerTracepoint(let heard): aerTracepoint(heard: heard)
            case .placed(let id, let type, let bus):
                guard let device = devices[id] else { return }
                placed(device, type: type, parentBus: bus)
                catchUp(device)
            case .injectTargetMissing(let id):
                if let device = devices[id] { injectTargetMissing(device) }
            case .discovered(let id, let path, let host): discovered(id: id, path: path, host: host)
            case .vfioDeviceAdded(let id, let host): vfioDeviceAdded(id: id, host: host)
            case .deviceDeleted(let id, let path): deviceDeleted(id: id, path: path)
            case .forwarded(let event, let id, let ticket, let notes, let outcome):
                forwarded(event, device: id, ticket: ticket, notes: notes, outcome: outcome)
            }
        }
    }

    func handle(_ command: RecoveryCommand) throws(QMPError) -> [VMAction] {
        try outbox.collect { () throws(QMPError) in
            switch command {
            case .addDevice(let id, let host, let policy, let injectAt, let trigger):
                try addDevice(id: id, host: host, policy: policy, injectAt: injectAt, origin: "command", errorTrigger: trigger)
            case .removeDevice(let id): try removeDevice(id: id)
            case .attachEventFD(let fd, let device, let severity): try attachEventFD(fd, device: device, severity: severity)
            case .setPolicy(let id, let policy, let cause): try setPolicy(id, policy, by: cause)
            case .clearLinkError(let id, let cause): try operatorClear(id, by: cause)
            case .injectHostError(let error, let id): try inject(error, into: id)
            }
        }
    }

    /// A reloaded config's devices (`reconcile`): one line per change, for the log.
    func handleReload(_ configured: [VFIORecoverySettings.DeviceConfiguration]) -> (changes: [String], actions: [VMAction]) {
        var changes: [String] = []
        let actions = outbox.collect { changes = reconcile(configured) }
        return (changes, actions)
    }
}
