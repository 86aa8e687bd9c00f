import BrokerState
import Dispatch
import ErrorEvents
import Glibc
import Logging
import VFIOWatch

/// The I/O edge of the error domain for one VM: turns host signals (eventfds, AER
/// counters, uevents), VM events (STOP, RESUME, RESET) and guest link resets into inputs
/// of each device's `DeviceErrorMachine`, and runs the actions it returns. Runs on the
/// VM's queue, so a host error becomes a `stop` on the VMM's socket with no thread hop.
final class VFIORecovery {
    unowned let vm: VMBroker
    let settings: VFIORecoverySettings
    let logger: Logger
    private(set) var devices: [String: WatchedDevice] = [:]
    /// Device ids in the order they were added, for stable listings.
    private var order: [String] = []
    private var pollTimer: DispatchSourceTimer?
    /// Whether the VM runs, as last seen (query-status at attach, then STOP/RESUME).
    private var vmRunning = true
    /// Flags and history on disk, when the broker has a state directory.
    private let store: StateStore?
    /// The VMM's version from its greeting: QEMU before 8.1 does not deliver correctable errors.
    var qemuVersion: QEMUVersion?
    /// Whether the last write to the state file worked: a failure is announced once, not per write.
    private var durable = true

    init(vm: VMBroker, settings: VFIORecoverySettings, store: StateStore?, logger: Logger) {
        self.vm = vm
        self.settings = settings
        self.store = store
        self.logger = logger
    }

    // MARK: lifecycle

    func start() {
        let stored = storedDevices()  // before config entries rewrite their rows
        for device in settings.devices {
            do throws(QMPError) {
                let policy = try DevicePolicy.parse(device.policy, autoCont: device.autoCont)
                try addDevice(id: device.id, host: device.host, policy: policy, injectAt: device.injectAt, origin: "config")
            } catch {
                logger.error("configured device not watched", metadata: ["device": "\(device.id)", "reason": "\(error.desc)"])
            }
        }
        restore(stored)
        for inherited in settings.inheritedEventFDs {
            do throws(QMPError) {
                guard let severity = EventFDSeverity(rawValue: inherited.severity) else {
                    throw QMPError.parameterValueRejected("severity", inherited.severity)
                }
                try attachEventFD(inherited.fd, device: inherited.device, severity: severity)
            } catch {
                logger.error("inherited eventfd not watched",
                             metadata: ["fd": "\(inherited.fd)", "device": "\(inherited.device)", "reason": "\(error.desc)"])
            }
        }
        startPolling()
    }

    func stop() {
        pollTimer?.cancel()
        pollTimer = nil
        devices.values.forEach { $0.detach() }
    }

    private func startPolling() {
        guard settings.pollMilliseconds > 0 else { return }
        let timer = DispatchSource.makeTimerSource(queue: vm.queue)
        let interval = DispatchTimeInterval.milliseconds(settings.pollMilliseconds)
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(settings.pollMilliseconds / 10))
        timer.setEventHandler { [weak self] in self?.pollCounters() }
        timer.activate()
        pollTimer = timer
    }

    // MARK: registry

    private func storedDevices() -> [StoredDevice] {
        guard let store else { return [] }
        do {
            return try store.devices(vm: vm.configuration.name)
        } catch {
            logger.error("cannot read the stored devices", metadata: ["reason": "\(error)"])
            return []
        }
    }

    /// Devices added at runtime come back as they were added (issue 13 item 5); a config
    /// entry with the same id wins. Eventfds cannot outlive the broker: management must
    /// send them again, and `query-vfio-devices` shows which sources are active.
    private func restore(_ stored: [StoredDevice]) {
        let configured = Dictionary(settings.devices.map { ($0.id, $0) }) { first, _ in first }
        for row in stored {
            if let entry = configured[row.id] {
                if row.origin == "command" || row.host != entry.host || row.injectAt != entry.injectAt {
                    logger.notice("the config entry wins over the stored device of the same id",
                                  metadata: ["device": "\(row.id)", "stored-host": "\(row.host)", "config-host": "\(entry.host)"])
                }
                continue
            }
            // Config devices dropped from the config stay dropped; discovery finds its own again.
            guard row.origin == "command" || row.origin == nil else { continue }
            do throws(QMPError) {
                try addDevice(id: row.id, host: row.host, policy: row.policy, injectAt: row.injectAt, origin: "command")
                logger.warning("restored a device added at runtime; its eventfds are gone, send them again with vfio-eventfd-add",
                               metadata: ["device": "\(row.id)", "link-error": "\(row.state.linkError)"])
            } catch {
                logger.error("stored device not watched", metadata: ["device": "\(row.id)", "reason": "\(error.desc)"])
            }
        }
    }

    func addDevice(id: String, host: String, policy: DevicePolicy, injectAt: String?, origin: String) throws(QMPError) {
        guard !id.isEmpty else { throw QMPError("Parameter 'id' expects a non-empty device id") }
        guard devices[id] == nil else { throw QMPError("Device '\(id)' is already watched") }
        guard let address = HostAddress(host) else {
            throw QMPError("Parameter 'host' expects a PCI address like 0000:3b:00.0")
        }
        if let injectAt, !QEMUDeviceID.isWellFormed(injectAt) { throw QEMUDeviceID.rejected("inject-at") }
        let reader = SysfsAERReader(sysfsRoot: settings.sysfsRoot)
        var tracker = AERCounterTracker(host: address, reader: reader, logger: logger)
        _ = tracker.poll()  // the baseline: errors before attach are history, not news
        let stored = persisted(id: id, host: address)
        let machine = DeviceErrorMachine(policy: policy, restoring: stored?.state ?? .clean, vmRunning: vmRunning,
                                         counters: stored?.counters ?? DeviceErrorCounters())
        let device = WatchedDevice(id: id, host: address, machine: machine, injectTarget: injectAt,
                                   tracker: tracker, origin: origin)
        // A broker stop from before a restart can only be judged once the VM's state is known.
        if stored?.state.stoppedByBroker == true { device.awaitingRunState = stored?.state }
        devices[id] = device
        order.append(id)
        record(device)
        vm.guestResets?.refreshTopology()
        logger.info("watching VFIO device", metadata: ["device": "\(id)", "host": "\(address)", "policy": "\(policy.mode.rawValue)"])
    }

    func removeDevice(id: String) throws(QMPError) {
        guard let device = devices.removeValue(forKey: id) else { throw QMPError.deviceNotWatched(id) }
        order.removeAll { $0 == id }
        device.detach()
        storing("forget device \(id)") { store in _ = try store.removeDevice(vm: vm.configuration.name, id: id) }
    }

    func device(_ id: String) throws(QMPError) -> WatchedDevice {
        guard let device = devices[id] else { throw QMPError.deviceNotWatched(id) }
        return device
    }

    var orderedDevices: [WatchedDevice] { order.compactMap { devices[$0] } }

    /// Watches an eventfd for a device; takes ownership of `fd` (closed on any failure).
    func attachEventFD(_ fd: Int32, device id: String, severity: EventFDSeverity) throws(QMPError) {
        guard let device = devices[id] else {
            _ = close(fd)
            throw QMPError.deviceNotWatched(id)
        }
        do {
            try EventFD.validate(fd)
            let watcher = try EventFDWatcher(fd: fd, queue: vm.queue, logger: logger) { [weak self, weak device] count in
                guard let self, let device else { return }
                eventFDFired(device, severity: severity, count: count)
            }
            device.eventFDs.append(.init(watcher: watcher, severity: severity))
            watcher.start()
        } catch {
            _ = close(fd)
            throw QMPError(error.description)
        }
    }

    // MARK: host inputs

    /// The host signalled an error: classify it by the AER counters when they grew, else by
    /// the fd's tag. An `any` fd with nothing to classify by is taken as fatal: when in
    /// doubt the link is protected, never silently trusted.
    private func eventFDFired(_ device: WatchedDevice, severity tag: EventFDSeverity, count: UInt64) {
        let change = device.tracker.poll()
        let signals = Int(clamping: count)
        if change.isEmpty {
            let error = HostError(severity: tag.severity ?? .fatal, errors: [], count: signals, source: .eventfd)
            hostError(error, on: device)
            return
        }
        for delta in change.deltas {
            let counted = Int(clamping: delta.total)
            // The most severe delta is the one this signal announced; coalesced signals
            // count as many errors as the larger of the two tallies.
            let reported = delta.severity == change.mostSevere ? max(counted, signals) : counted
            hostError(HostError(delta, count: reported, source: .eventfd), on: device)
        }
    }

    /// Counters that grew without a signal (no eventfd attached, or a lost one).
    private func pollCounters() {
        for device in orderedDevices {
            for delta in device.tracker.poll().deltas { hostError(HostError(delta, source: .sysfs), on: device) }
        }
    }

    /// A kernel uevent for one of this VM's devices (matched by `PCI_SLOT_NAME`).
    func uevent(_ event: UEvent) {
        guard let address = event.pciAddress,
              let device = orderedDevices.first(where: { $0.host == address }) else { return }
        switch event.errorEvent {
        case .successfulRecovery?:
            perform(device.machine.hostRecoveryDone(), on: device)
        case .failedRecovery?:
            perform(device.machine.hostRecoveryFailed(), on: device)
            logger.warning("host recovery failed", metadata: ["device": "\(device.id)", "host": "\(address)"])
        case .beginRecovery?:
            // The AER core is handling an error: without an eventfd this is the first news of it.
            guard device.eventFDs.isEmpty else { return }
            for delta in device.tracker.poll().deltas { hostError(HostError(delta, source: .uevent), on: device) }
        case nil:
            if event.deviceOnline == true { perform(device.machine.hostRecoveryDone(), on: device) }
        }
    }

    /// `x-vfio-inject-error`: a simulated host error, through the same path as a real one.
    func inject(_ error: HostError, into id: String) throws(QMPError) {
        hostError(error, on: try device(id))
    }

    private func hostError(_ error: HostError, on device: WatchedDevice) {
        perform(device.machine.hostError(error), on: device)
    }

    // MARK: VM and operator inputs

    /// The VMM's STOP, RESUME and RESET events.
    func vmEvent(_ name: String) {
        switch name {
        case "STOP":
            vmRunning = false
            forEachDevice { $0.machine.vmStopped() }
        case "RESUME":
            vmRunning = true
            forEachDevice { $0.machine.vmResumed() }
        case "RESET":
            forEachDevice { $0.machine.systemReset() }
        default:
            break
        }
    }

    /// The VM's run state learnt at attach (`query-status`). Devices restored with a broker
    /// stop are rebuilt now: the stop still holds only if the VM is still paused.
    func vmRunState(running: Bool) {
        vmRunning = running
        for device in orderedDevices {
            guard let restored = device.awaitingRunState else { continue }
            device.awaitingRunState = nil
            device.machine = DeviceErrorMachine(policy: device.machine.policy, restoring: restored,
                                                vmRunning: running, counters: device.machine.counters)
            if device.machine.persistedState != restored { save(device.machine.persistedState, of: device) }
        }
        vmEvent(running ? "RESUME" : "STOP")
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

    func operatorClear(_ id: String) throws(QMPError) {
        let device = try device(id)
        perform(device.machine.operatorClear(), on: device)
    }

    func setPolicy(_ id: String, _ policy: DevicePolicy) throws(QMPError) {
        let device = try device(id)
        perform(device.machine.policyChanged(to: policy), on: device)
        record(device)
    }

    private func forEachDevice(_ input: (WatchedDevice) -> DeviceActions) {
        for device in orderedDevices { perform(input(device), on: device) }
    }

    // MARK: actions

    private func perform(_ actions: DeviceActions, on device: WatchedDevice, linkResetNote: String? = nil) {
        for action in actions {
            switch action {
            case .stopVM:
                logger.warning("stopping the VM", metadata: ["device": "\(device.id)"])
                vm.upstream.execute("stop") { [logger] reply in
                    if case .failed(let error) = reply { logger.error("stop failed", metadata: ["reason": "\(error.desc)"]) }
                }
            case .contVM:
                logger.notice("resuming the VM the broker stopped", metadata: ["device": "\(device.id)"])
                vm.upstream.execute("cont")
            case .persist(let state):
                save(state, of: device)
            case .emitPCIError(let event):
                vm.emit(PCIErrorEvent.name, data: VFIOEventData.pciError(event, device: device, note: note(for: event, on: device)))
                storing("record error history") { store in
                    try store.appendHistory(ErrorHistoryEntry(vm: vm.configuration.name, device: device.id,
                                                              host: device.host.description, event),
                                            counters: device.machine.counters)
                }
            case .emitLinkReset(let event):
                vm.emit(LinkResetEvent.name, data: VFIOEventData.linkReset(event, device: device, note: linkResetNote))
            case .emitLinkErrorCleared(let event):
                vm.emit(LinkErrorClearedEvent.name, data: VFIOEventData.linkErrorCleared(event, device: device))
            case .forwardToGuest(let error):
                forward(error, to: device)
            }
        }
    }

    /// What a reader of the event should know about how the error reached the guest.
    private func note(for event: PCIErrorEvent, on device: WatchedDevice) -> String? {
        guard event.action == .forward else { return nil }
        var notes: [String] = []
        if device.injectTarget != device.id { notes.append("injected at \(device.injectTarget)") }
        let plan = GuestAERError(severity: event.severity, errors: event.errors).injectionPlan
        if let qemuVersion, !plan.reachesGuest(on: qemuVersion) { notes.append(AERInjectionPlan.undeliveredNote) }
        return notes.isEmpty ? nil : notes.joined(separator: "; ")
    }

    // MARK: durable state

    private func persisted(id: String, host: HostAddress) -> StoredDevice? {
        guard let store else { return nil }
        do {
            guard let stored = try store.device(vm: vm.configuration.name, id: id) else { return nil }
            guard stored.host == host.description else {
                logger.warning("stored state is for another host address; starting clean",
                               metadata: ["device": "\(id)", "stored": "\(stored.host)", "now": "\(host)"])
                return nil
            }
            if stored.state.linkError { logger.warning("link-error flag restored", metadata: ["device": "\(id)"]) }
            return stored
        } catch {
            logger.error("cannot read stored state", metadata: ["device": "\(id)", "reason": "\(error)"])
            return nil
        }
    }

    /// Writes a device's row (policy, flag, counters); a restored broker stop still being
    /// judged is written back as it was, not as the provisional machine sees it.
    func record(_ device: WatchedDevice) {
        storing("store device \(device.id)") { store in
            try store.save(StoredDevice(vm: vm.configuration.name, id: device.id, host: device.host.description,
                                        policy: device.machine.policy,
                                        state: device.awaitingRunState ?? device.machine.persistedState,
                                        counters: device.machine.counters,
                                        injectAt: device.injectTarget == device.id ? nil : device.injectTarget,
                                        origin: device.origin))
        }
    }

    /// The flag and the broker-stop ownership: written before the event that announces them.
    private func save(_ state: PersistedDeviceState, of device: WatchedDevice) {
        storing("store link-error flag of \(device.id)") { store in
            try store.saveState(vm: vm.configuration.name, id: device.id, state)
        }
    }

    /// A failed write is logged loudly but never stops error handling: the VM's protection
    /// in this run does not depend on the disk. The first failure after a good write is
    /// also announced (`BROKER_STATE_NOT_DURABLE`): the flag then lives only in memory.
    private func storing(_ what: String, _ body: (StateStore) throws -> Void) {
        guard let store else { return }
        do {
            try body(store)
            durable = true
        } catch {
            logger.error("state store: cannot \(what); the state is kept in memory only and will not survive a restart",
                         metadata: ["reason": "\(error)"])
            if durable {
                vm.emit("BROKER_STATE_NOT_DURABLE", data: BrokerEventData.stateNotDurable(
                    vm: vm.configuration.name, operation: what, reason: "\(error)"))
            }
            durable = false
        }
    }

    /// Injects the error into the guest, one HMP command per AER bit (QEMU 7.2 takes one).
    private func forward(_ error: GuestAERError, to device: WatchedDevice) {
        let plan = error.injectionPlan
        if plan.correctable {
            logger.info("correctable error injected: \(AERInjectionPlan.undeliveredNote)", metadata: ["device": "\(device.id)"])
        }
        guard QEMUDeviceID.isWellFormed(device.injectTarget) else {
            logger.error("not injecting: the target is not a QEMU device id (set inject-at)",
                         metadata: ["device": "\(device.id)", "target": "\(device.injectTarget)"])
            return
        }
        for command in plan.commands {
            let line = command.commandLine(target: device.injectTarget)
            vm.upstream.execute("human-monitor-command", arguments: .object(["command-line": .string(line)])) {
                [logger] reply in
                switch reply {
                case .reply(let line) where line.has("return"):
                    let text = (try? JSON.parse(line.bytes))?["return"]?.string ?? ""
                    if !text.hasPrefix("OK") {
                        logger.error("QEMU refused the AER injection",
                                     metadata: ["device": "\(device.id)", "command": "\(line)", "answer": "\(text)"])
                    }
                case .reply(let line):
                    logger.error("AER injection failed", metadata: ["device": "\(device.id)",
                                                                    "reply": "\(String(decoding: line.bytes, as: UTF8.self))"])
                case .failed(let failure):
                    logger.error("AER injection failed", metadata: ["device": "\(device.id)", "reason": "\(failure.desc)"])
                }
            }
        }
    }
}

extension QMPError {
    static func deviceNotWatched(_ id: String) -> QMPError { QMPError(.deviceNotFound, "Device '\(id)' is not a watched VFIO device") }
}

extension HostError {
    /// The errors a counter file's growth shows; `count` defaults to how much it grew.
    init(_ delta: AERCounterDelta, count: Int? = nil, source: ErrorSource) {
        self.init(severity: delta.severity, errors: delta.errors.compactMap(\.error),
                  count: count ?? Int(clamping: delta.total), source: source)
    }
}

extension DevicePolicy {
    static func parse(_ text: String, autoCont: Bool) throws(QMPError) -> DevicePolicy {
        guard let mode = Mode(rawValue: text) else { throw QMPError.parameterValueRejected("policy", text) }
        return DevicePolicy(mode, autoCont: autoCont)
    }
}
