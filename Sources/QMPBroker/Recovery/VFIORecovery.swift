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
    /// The broker's own commands to the VMM (stop, cont, QOM, HMP injections).
    let commands: CommandSink
    /// The device events to the VM's clients (wired by the VM when it starts).
    var events = EventSink { _, _ in }
    /// Asks the VM to re-read the guest's PCI topology (a watched device was added).
    var refreshTopology: () -> Void = {}
    /// A device's protection may have changed: its error trigger was taken or released, an
    /// eventfd or the device itself came or went (the VM republishes its metrics).
    var protectionChanged: () -> Void = {}
    /// Asks the VM to learn where a device (by id) sits (`VMBroker.learnPlacement`).
    var placementWanted: (String) -> Void = { _ in }
    /// The VMM's pid file, when the process on the QMP socket is not the VMM.
    let logger: Logger
    private(set) var devices: [String: WatchedDevice] = [:]
    /// Device ids in the order they were added, for stable listings.
    private var order: [String] = []
    private let pollTimer: LoopTimer
    /// Whether the VM runs, as last seen (query-status at attach, then STOP/RESUME).
    private var runState = VMRunState()
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

    init(vmName: String, settings: VFIORecoverySettings, store: StateStore?, loop: EventLoop,
         commands: CommandSink, logger: Logger) {
        self.vmName = vmName
        self.loop = loop
        self.pollTimer = LoopTimer(loop: loop)
        self.settings = settings
        self.commands = commands
        self.store = store
        self.logger = logger
    }

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

    /// The VMM went away: its vfio handles are gone, and the broker's duplicates must not
    /// keep the devices open for the next VMM.
    func detached() {
        for device in orderedDevices { releaseTrigger(of: device) }
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
        guard !stopped, pollMilliseconds > 0 else { return }
        pollTimer.repeating(everyMilliseconds: pollMilliseconds) { [weak self] in self?.pollCounters() }
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
        record(device)
        countMissedErrors(of: device)
        if commands.isReady() { placementWanted(id) }
        refreshTopology()
        logger.info("watching VFIO device", metadata: ["device": "\(id)", "host": "\(address)", "policy": "\(policy.mode.rawValue)"])
    }

    func removeDevice(id: String) throws(QMPError) {
        defer { protectionChanged() }
        guard let device = devices.removeValue(forKey: id) else { throw QMPError.deviceNotWatched(id) }
        order.removeAll { $0 == id }
        device.detachEventFDs()
        releaseTrigger(of: device)
        storing("forget device \(id)") { store in _ = try store.removeDevice(vm: vmName, id: id) }
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

    /// The VMM's STOP, RESUME and RESET events, and the run state learnt at attach.
    func vmEvent(_ event: VMRunEvent) {
        runState.apply(event)
        forEachDevice { $0.machine.vmEvent(event) }
    }

    /// A client's `stop` went upstream: QEMU sends no STOP for an already paused VM, so
    /// the machines hear it from here (the broker's pause is then the operator's).
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

    /// A guest link reset the VM routed here from its trace follower.
    func guestLinkReset(id: String, origin: LinkResetOrigin, late: Bool) {
        guard let device = devices[id] else { return }
        guestLinkReset(device, origin: origin, late: late)
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

    /// Runs a machine's actions in their order. `notes` say how the error was classified.
    /// An error that is forwarded is announced once QEMU has answered the injection, so
    /// that the event's `action` says what really happened; the device's later events
    /// wait behind it (`OrderedAnnouncements`). Stop, cont and persist never wait.
    func perform(_ actions: DeviceActions, on device: WatchedDevice, notes: [String] = [], linkResetNote: String? = nil,
                 by cause: Cause = .broker) {
        // The log lines and history rows come after the actions: `stop` races the guest.
        defer { journal(actions, on: device, by: cause) }
        var unannounced: PCIErrorEvent?
        for action in actions {
            switch action {
            case .stopVM:
                commands.execute("stop", for: .stopVM)
            case .contVM:
                commands.execute("cont", for: .contVM)
            case .persist(let state):
                save(state, of: device)
            case .emitPCIError(let event) where event.action == .forward:
                unannounced = event
            case .emitPCIError(let event):
                inOrder(device) { [weak self, weak device] in
                    guard let self, let device else { return }
                    announce(event, on: device, notes: notes)
                }
            case .emitLinkReset(let event):
                inOrder(device) { [weak self, weak device] in
                    guard let self, let device else { return }
                    events.emit(LinkResetEvent.name, data: VFIOEventData.linkReset(event, device: device, note: linkResetNote))
                }
            case .emitLinkErrorCleared(let event):
                inOrder(device) { [weak self, weak device] in
                    guard let self, let device else { return }
                    events.emit(LinkErrorClearedEvent.name, data: VFIOEventData.linkErrorCleared(event, device: device))
                }
            case .emitHostRecovery(let event):
                inOrder(device) { [weak self, weak device] in
                    guard let self, let device else { return }
                    events.emit(HostRecoveryEvent.name, data: VFIOEventData.hostRecovery(event, device: device))
                }
            case .forwardToGuest(let error):
                let event = unannounced
                unannounced = nil
                let ticket = device.announcements.reserve()
                forward(error, to: device) { [weak self, weak device] outcome in
                    guard let self, let device else { return }
                    let ready = device.announcements.fill(ticket) { [weak self, weak device] in
                        guard let self, let device, let event else { return }
                        announce(event.forwarded(outcome), on: device, notes: notes + outcome.notes)
                    }
                    ready.forEach { $0() }
                }
            }
        }
        if let unannounced {
            inOrder(device) { [weak self, weak device] in
                guard let self, let device else { return }
                announce(unannounced, on: device, notes: notes)
            }
        }
    }

    /// Sends a device event now, or after the forwarded errors before it.
    private func inOrder(_ device: WatchedDevice, _ emit: @escaping () -> Void) {
        device.announcements.append(emit).forEach { $0() }
    }

    /// Emits `VFIO_PCI_ERROR` and records it in the history.
    private func announce(_ event: PCIErrorEvent, on device: WatchedDevice, notes: [String]) {
        let note = notes.isEmpty ? nil : notes.joined(separator: "; ")
        events.emit(PCIErrorEvent.name, data: VFIOEventData.pciError(event, device: device, note: note))
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

extension DevicePolicy {
    static func parse(_ text: String, autoCont: Bool) throws(QMPError) -> DevicePolicy {
        guard let mode = Mode(rawValue: text) else { throw QMPError.parameterValueRejected("policy", text) }
        return DevicePolicy(mode, autoCont: autoCont)
    }
}
