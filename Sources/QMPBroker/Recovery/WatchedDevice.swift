import ErrorEvents
import QMPSessions
import VFIOWatch

/// A VFIO device the broker watches for one VM: its identity, its error state machine,
/// and the host sources attached to it. Lives on the VM's event loop.
final class WatchedDevice {
    /// The guest-visible QEMU device id.
    let id: String
    let host: HostAddress
    var machine: DeviceErrorMachine
    /// Where errors are injected into the guest: the device itself, or the port above
    /// it when the device cannot report (SPEC 9: e1000e drops injected errors).
    var injectTarget: String
    /// The AER counters of the device and of the ports above it.
    var counters: DeviceAERCounters
    var eventFDs: [AttachedEventFD] = []
    /// The port above the device in the guest (QOM `parent_bus`), where errors are injected
    /// if QEMU cannot inject at the device.
    var portAbove: String?
    /// The QEMU device type (QOM `type`), once learnt; nil after that: QEMU has no such device.
    var qemuType: String? {
        didSet { placementKnown = true }
    }
    /// Whether QOM has been asked where the device is (at attach).
    var placementKnown = false
    /// Whether QEMU has the device, as far as the broker knows (until asked, it assumes so).
    var isPresent: Bool { qemuType != nil || !placementKnown }
    /// `inject-at` as given (config, command, or restored from the state file): then it
    /// is kept, never chosen from the placement.
    let injectAt: String?
    var injectAtConfigured: Bool { injectAt != nil }
    /// How uncorrectable errors are signalled: `error-trigger`, or its default once the
    /// QEMU type is known.
    var triggerMode: ErrorTriggerMode
    let triggerModeConfigured: Bool
    var triggerStatus: ErrorTriggerStatus
    /// The taken-over error interrupt and the watcher of its eventfd.
    var trigger: VFIOErrorTrigger?
    var triggerWatcher: EventFDWatcher?
    /// The device's events, kept in order while a forwarded error waits for QEMU.
    var announcements = OrderedSlots<DeviceAnnouncement>()
    /// What the counters show happened while no broker watched, until reported at attach.
    var missedErrors: [ClassifiedAERError] = []
    /// When an error was last reported for the device (monotonic seconds).
    var lastReported: Double?
    /// How the device came to be watched (`config`, `command`, `discovered`).
    let origin: String

    struct AttachedEventFD {
        let watcher: EventFDWatcher
        let severity: EventFDSeverity
    }

    init(id: String, host: HostAddress, machine: DeviceErrorMachine, injectTarget: String?,
         counters: DeviceAERCounters, origin: String, triggerMode: ErrorTriggerMode? = nil) {
        self.triggerMode = triggerMode ?? .eventfd
        self.triggerModeConfigured = triggerMode != nil
        self.triggerStatus = ErrorTriggerStatus(mode: triggerMode ?? .eventfd, active: false)
        self.id = id
        self.host = host
        self.machine = machine
        self.injectTarget = injectTarget ?? id
        self.injectAt = injectTarget
        self.counters = counters
        self.origin = origin
    }

    /// Names of the sources active now, for `query-vfio-devices`.
    /// `aerTracepoint`: whether the process hears `ras:aer_event`.
    func sourceNames(aerTracepoint: Bool) -> [String] {
        var names = triggerWatcher == nil ? [] : ["takeover"]
        names += eventFDs.map { "eventfd:\($0.severity.rawValue)" }
        if aerTracepoint { names.append("aer-tracepoint") }
        if counters.hasAERCounters { names.append("sysfs") }
        return names
    }

    /// `error-trigger` for `query-vfio-devices`: the mode, except that a takeover not done
    /// yet (and not failed, which `error-trigger-error` tells) is `takeover-pending`:
    /// meanwhile QEMU's own handler stops the VM on an uncorrectable error.
    var errorTriggerState: String {
        if triggerMode == .takeover && triggerWatcher == nil && triggerStatus.error == nil { return "takeover-pending" }
        return triggerMode.rawValue
    }

    /// Stops the handed-over eventfds (the taken-over trigger is released by `VFIORecovery`).
    func detachEventFDs() {
        eventFDs.forEach { $0.watcher.cancel() }
        eventFDs = []
    }
}

/// What an eventfd signals: the error IRQ of one severity, or of any (classified by the
/// AER counters).
public enum EventFDSeverity: String, Sendable, CaseIterable {
    case fatal
    case nonFatal = "non-fatal"
    case any

    var severity: Severity? {
        switch self {
        case .fatal: return .fatal
        case .nonFatal: return .nonFatal
        case .any: return nil
        }
    }
}
