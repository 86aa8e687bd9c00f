import BrokerState
import EventLoop
import ErrorEvents
import Glibc
import Logging
import QMPWire
import VFIOWatch

/// The I/O edge of the error domain for one VM: turns host signals (eventfds, AER
/// counters, uevents), VM events (STOP, RESUME, RESET) and guest link resets into inputs
/// of each device's `DeviceErrorMachine`, and runs the actions it returns. Runs on the
/// VM's loop, in the VM's isolation, so a host error becomes a `stop` on the VMM's socket
/// with no thread hop.
final class VFIORecovery {
    let vmName: String
    let settings: VFIORecoverySettings
    /// The VM's loop: host sources and the poll timer fire on it.
    let loop: EventLoop
    /// Actions for the VM: returned from inputs, handed over from eventfds and the poll.
    let outbox = ActionOutbox()
    let logger: Logger
    private(set) var devices: [String: WatchedDevice] = [:]
    /// Device ids in the order they were added, for stable listings.
    private var order: [String] = []
    private let pollTimer: LoopTimer
    /// Whether the VM runs, as last seen (query-status at attach, then STOP/RESUME).
    private var runState = VMRunState()
    /// The attached VMM's process, for the error-trigger takeover; nil while detached.
    var vmm: VMMProcess?
    /// Flags and history on disk, when the broker has a state directory.
    let store: StateStore?
    /// The VMM's version from its greeting: QEMU before 8.1 does not deliver correctable errors.
    var qemuVersion: QEMUVersion?
    /// Whether the last write to the state file worked: a failure is announced once, not per write.
    var stateDurable = true
    /// Whether the process hears the kernel's `ras:aer_event` tracepoint: every host AER
    /// error is then announced as it is handled, and the poll slows down.
    private(set) var hearsAERTracepoint = false
    private var stopped = false
    /// The input being handled wrote its stop before deciding the rest (`notified`).
    var stopWrittenFirst = false

    init(vmName: String, settings: VFIORecoverySettings, store: StateStore?, loop: EventLoop, logger: Logger) {
        self.vmName = vmName
        self.loop = loop
        self.pollTimer = LoopTimer(loop: loop)
        self.settings = settings
        self.store = store
        self.logger = logger
    }

    // MARK: actions out

    func ask(_ action: VMAction) { outbox.ask(action) }

    /// A device's protection may have changed: its error trigger was taken or released, an
    /// eventfd or the device itself came or went.
    func protectionChanged() { ask(.protectionChanged) }

    // MARK: lifecycle

    func start() {
        let stored = storedDevices()  // before config entries rewrite their rows
        for device in settings.devices {
            do throws(QMPError) {
                try addDevice(id: device.id, host: device.host, policy: device.policy, injectAt: device.injectAt, origin: "config",
                              errorTrigger: device.errorTrigger)
            } catch {
                logger.error("configured device not watched", metadata: ["device": "\(device.id)", "reason": "\(error.desc)"])
            }
        }
        restore(stored)
        for inherited in settings.inheritedEventFDs {
            do throws(QMPError) {
                try attachEventFD(inherited.fd, device: inherited.device, severity: inherited.severity)
            } catch {
                logger.error("inherited eventfd not watched",
                             metadata: ["fd": "\(inherited.fd)", "device": "\(inherited.device)", "reason": "\(error.desc)"])
            }
        }
        startPolling()
    }

    func stop() {
        stopped = true
        pollTimer.cancel()
        for device in devices.values {
            device.detachEventFDs()
            releaseTrigger(of: device)
        }
    }

    /// The poll's period now: the fallback's, or the safety net's beside the tracepoint.
    var pollMilliseconds: Int {
        hearsAERTracepoint ? settings.pollMillisecondsBesideTracepoint : settings.pollMilliseconds
    }

    private func startPolling() {
        pollTimer.cancel()
        // No device, nothing to poll: an idle broker with many VMs wakes for nothing else.
        guard !stopped, pollMilliseconds > 0, !devices.isEmpty else { return }
        pollTimer.repeating(everyMilliseconds: pollMilliseconds) { [weak self] in
            guard let self else { return }
            outbox.handOver { pollCounters() }
        }
    }

    /// The process started (or could not start) hearing `ras:aer_event`. Its records name
    /// functions of this host's PCI tree, which only the real sysfs describes: with
    /// another `sysfs-root` (a test's fake tree) the poll is all there is.
    func aerTracepoint(heard: Bool) {
        let heard = heard && settings.sysfsRoot == "/sys"
        guard heard != hearsAERTracepoint else { return }
        hearsAERTracepoint = heard
        startPolling()
        logger.debug(heard ? "host AER errors announced by the ras:aer_event tracepoint" : "host AER errors found by the sysfs poll",
                    metadata: ["vm": "\(vmName)", "poll-ms": "\(pollMilliseconds)"])
    }

    // MARK: registry

    func addDevice(id: String, host: String, policy: DevicePolicy, injectAt: String?, origin: String,
                   errorTrigger: ErrorTriggerMode? = nil) throws(QMPError) {
        defer { protectionChanged() }
        guard !id.isEmpty else { throw QMPError("Parameter 'id' expects a non-empty device id") }
        guard devices[id] == nil else { throw QMPError("Device '\(id)' is already watched") }
        guard let address = HostAddress(host) else {
            throw QMPError("Parameter 'host' expects a PCI address like 0000:3b:00.0")
        }
        if let injectAt, !QEMUDeviceID.isWellFormed(injectAt) { throw QEMUDeviceID.rejected("inject-at") }
        let counters = DeviceAERCounters(host: address, reader: SysfsAERReader(sysfsRoot: settings.sysfsRoot), logger: logger)
        let stored = persisted(id: id, host: address)
        // A broker stop from before a restart can only be judged once the VM's state is known.
        let machine = DeviceErrorMachine(policy: policy, restoring: stored?.state ?? .clean, vm: runState,
                                         counters: stored?.counters ?? DeviceErrorCounters())
        let device = WatchedDevice(id: id, host: address, machine: machine, injectTarget: injectAt,
                                   counters: counters, origin: origin, triggerMode: errorTrigger)
        devices[id] = device
        order.append(id)
        if devices.count == 1 { startPolling() }
        record(device)
        countMissedErrors(of: device)
        if vmm != nil { ask(.learnPlacement(device: id)) }
        ask(.watchedDevicesChanged)
        logger.info("watching VFIO device", metadata: ["device": "\(id)", "host": "\(address)", "policy": "\(policy.mode.rawValue)"])
    }

    func removeDevice(id: String) throws(QMPError) {
        defer { protectionChanged() }
        guard let device = devices.removeValue(forKey: id) else { throw QMPError.deviceNotWatched(id) }
        order.removeAll { $0 == id }
        if devices.isEmpty { pollTimer.cancel() }
        device.detachEventFDs()
        releaseTrigger(of: device)
        storing("forget device \(id)") { store in _ = try store.removeDevice(vm: vmName, id: id) }
        ask(.watchedDevicesChanged)  // the link-reset watcher forgets it too
        logger.info("stopped watching VFIO device", metadata: deviceMetadata(device))
    }

    func device(_ id: String) throws(QMPError) -> WatchedDevice {
        guard let device = devices[id] else { throw QMPError.deviceNotWatched(id) }
        return device
    }

    var orderedDevices: [WatchedDevice] { order.compactMap { devices[$0] } }

    /// Why a client's `cont` must not reach the VMM, or nil (`DeviceErrorMachine.forbidsResume`).
    var resumeRefusal: QMPError? {
        guard let device = orderedDevices.first(where: { $0.isPresent && $0.machine.forbidsResume }) else { return nil }
        return QMPError("Device '\(device.id)' (\(device.host)) failed host recovery and is gone: "
            + "the guest cannot resume on it; remove it (device_del) or clear its flag (vfio-link-error-clear)")
    }

    // MARK: VM and operator inputs

    func vmEvent(_ event: VMRunEvent) {
        runState.apply(event)
        forEachDevice { $0.machine.vmEvent(event) }
    }

    func clientRequestedStop() { forEachDevice { $0.machine.clientRequestedStop() } }

    /// `late`: read from the trace log after a broker restart, logged while it was down.
    func guestLinkReset(_ device: WatchedDevice, origin: LinkResetOrigin, late: Bool = false) {
        if late {
            logger.warning("guest link reset seen late: QEMU logged it while the broker was not running",
                           metadata: ["device": "\(device.id)", "link-error": "\(device.machine.linkError)"])
        }
        perform(device.machine.guestLinkReset(origin: origin), on: device,
                linkResetNote: late ? "seen late: logged by QEMU while the broker was not running" : nil)
    }

    func operatorClear(_ id: String, by cause: Cause = .broker) throws(QMPError) {
        let device = try device(id)
        perform(device.machine.operatorClear(), on: device, by: cause)
    }

    func setPolicy(_ id: String, _ policy: DevicePolicy, by cause: Cause = .broker) throws(QMPError) {
        let device = try device(id)
        let old = device.machine.policy
        perform(device.machine.policyChanged(to: policy), on: device, by: cause)
        journalPolicy(device, from: old, by: cause)
        record(device)
    }

    private func forEachDevice(_ input: (WatchedDevice) -> DeviceActions) {
        for device in orderedDevices { perform(input(device), on: device) }
    }

    // MARK: actions

    /// Runs a machine's actions in their order: `stop` is written at once, ahead of
    /// everything else the input does; the flag is persisted right after; the
    /// events go out in the order the machine said them, a forwarded error's once QEMU has
    /// answered its injection (`forwarded`), and what came after it waits behind it
    /// (`OrderedAnnouncements`). `notes` say how the error was classified.
    func perform(_ actions: DeviceActions, on device: WatchedDevice, notes: [String] = [], linkResetNote: String? = nil,
                 by cause: Cause = .broker) {
        // The log lines and history rows come after the actions: `stop` races the guest.
        defer { journal(actions, on: device, by: cause) }
        for action in actions {
            switch action {
            case .stopVM:
                guard !stopWrittenFirst else { break }
                outbox.askFirst(.command("stop", purpose: .stopVM))
            case .contVM:
                ask(.command("cont", purpose: .contVM))
            case .persist(let state):
                save(state, of: device)
            case .emitPCIError(let event):
                announce(device.announcements.append(.pciError(event, notes: notes)), on: device)
            case .emitLinkReset(let event):
                let data = VFIOEventData.linkReset(event, device: device, note: linkResetNote)
                announce(device.announcements.append(.event(LinkResetEvent.name, data)), on: device)
            case .emitLinkErrorCleared(let event):
                let data = VFIOEventData.linkErrorCleared(event, device: device)
                announce(device.announcements.append(.event(LinkErrorClearedEvent.name, data)), on: device)
            case .emitHostRecovery(let event):
                let data = VFIOEventData.hostRecovery(event, device: device)
                announce(device.announcements.append(.event(HostRecoveryEvent.name, data)), on: device)
            case .forwardToGuest(let error, let event):
                ask(.forwardToGuest(error, device: device.id, ticket: device.announcements.reserve(), event: event, notes: notes))
            }
        }
    }

    /// QEMU answered the injection of a forwarded error (`VMBroker.forwardToGuest`): its
    /// event goes out as the injection went, with what waited behind it.
    func forwarded(_ event: PCIErrorEvent, device id: String, ticket: UInt64, notes: [String], outcome: InjectionOutcome) {
        guard let device = devices[id] else { return }
        if let target = outcome.target, target != device.injectTarget {
            logger.notice("injecting at the port above from now on", metadata: ["device": "\(device.id)", "inject-at": "\(target)"])
            device.injectTarget = target
        }
        let announcement = DeviceAnnouncement.pciError(event.forwarded(outcome), notes: notes + self.notes(for: outcome, on: device))
        announce(device.announcements.fill(ticket, with: announcement), on: device)
    }

    /// Sends the device events that may go now, in order.
    private func announce(_ ready: [DeviceAnnouncement], on device: WatchedDevice) {
        for announcement in ready {
            switch announcement {
            case .pciError(let event, let notes): announce(event, on: device, notes: notes)
            case .event(let name, let data): ask(.emit(name, data: data))
            }
        }
    }

    /// Emits `VFIO_PCI_ERROR` and records it in the history.
    private func announce(_ event: PCIErrorEvent, on device: WatchedDevice, notes: [String]) {
        let note = notes.isEmpty ? nil : notes.joined(separator: "; ")
        ask(.emit(PCIErrorEvent.name, data: VFIOEventData.pciError(event, device: device, note: note)))
        writeLater("record error history") { store, failed in
            store.recordHistoryLater(HistoryRecord(vm: vmName, device: device.id,
                                                   host: device.host.description, event),
                                     counters: device.machine.counters, onFailure: failed)
        }
    }
}

extension QMPError {
    static func deviceNotWatched(_ id: String) -> QMPError { QMPError(.deviceNotFound, "Device '\(id)' is not a watched VFIO device") }
}
