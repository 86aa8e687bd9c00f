import BrokerState
import EventLoop
import ErrorEvents
import Glibc
import LinkResetTrace
import Logging
import QMPWire

/// Watches a stock QEMU for guest link resets of watched devices: at attach it points
/// QEMU's log at a regular file the broker owns and turns on the trace events
/// (`LinkResetTracing`), then follows that file with inotify on the VM's queue. A Secondary
/// Bus Reset on a bridge above a watched device, or a vfio hot reset outside a system
/// reset, becomes a `guestLinkReset` input of that device's machine.
final class GuestResetMonitor {
    private unowned let vm: VMBroker
    private let logger: Logger
    let logPath: String
    private let reader: TraceLogReader
    private let verifyTimer: LoopTimer
    private var detector = SecondaryBusResetDetector()
    private var classifier = HotResetClassifier()
    private var topology = PCITopology.empty
    /// Bridges above each watched device found through QOM (`parent_bus`), for devices
    /// `query-pci` does not list yet (behind a bridge whose bus number is still 0).
    private var bridgesViaQOM: [String: [GuestPCIAddress]] = [:]
    private var previouslyEnabled: Set<String> = []
    private(set) var watch = LinkResetWatch()
    private var refreshPending = false
    /// A check is waiting for QEMU: checks never pile up behind a VMM that is slow to answer.
    private var verifyPending = false
    private var refreshAgain = false
    private var refreshWaiters: [() -> Void] = []
    /// How often QEMU's trace state is re-checked when no client command gave cause, and
    /// a broken watch tried again.
    static let verifyIntervalMilliseconds = 2000

    init(vm: VMBroker, logPath: String, store: StateStore?, logger: Logger) {
        self.vm = vm
        self.verifyTimer = LoopTimer(loop: vm.loop)
        self.logPath = logPath
        self.logger = logger
        reader = TraceLogReader(path: logPath, vm: vm.configuration.name, access: TraceLogAccess(vm.configuration),
                                store: store, loop: vm.loop, logger: logger)
        reader.onAppended = { [weak self] in self?.readAppended() }
    }

    // MARK: attach and detach

    /// The VMM is (again) ready: follow the log file and switch tracing on.
    func attach() {
        apply(watch.attachStarted())
        startTicking()
        guard LinkResetTracing.isUsableLogPath(logPath) else {
            return apply(watch.attachFailed("trace log path \(logPath) is unusable by QEMU's logfile"))
        }
        do throws(TraceLogFile.Failure) {
            try reader.open()
        } catch {
            return apply(watch.attachFailed("cannot follow the trace log: \(error)"))
        }
        switchTracingOn()
    }

    /// The attach commands, then the topology; the file is already followed.
    private func switchTracingOn() {
        run(LinkResetTracing.stateQueries) { [weak self] replies in
            guard let self else { return }
            previouslyEnabled = LinkResetTracing.previouslyEnabled(fromReplies: replies)
            let commands = LinkResetTracing.attachCommands(logPath: logPath)
            run(commands, checked: true) { [weak self] replies, failure in
                guard let self else { return }
                guard replies.count == commands.count else {
                    return apply(watch.attachFailed(failure ?? "the VMM did not answer the tracing commands"))
                }
                // QEMU opened the path itself: it must still be the file the broker reads.
                guard reader.isStillAtPath else {
                    return apply(watch.attachFailed("the trace log at \(logPath) was replaced while QEMU opened it"))
                }
                // Watching starts once QEMU traces and the topology says which bridges matter.
                refreshTopology { [weak self] in
                    guard let self, vm.upstream.isReady, !watch.isIntact else { return }
                    apply(watch.attached())
                    readAppended()  // what QEMU logged while the broker was away
                    reader.savePosition()  // a first run too: a restart must know where to resume
                }
            }
        }
    }

    /// Gives QEMU's log back (to `/dev/stderr`: the broker cannot learn a VMM's `-D`) and
    /// stops following. Best effort: the VMM may already be gone.
    func detach() {
        if watch.isIntact && vm.upstream.isReady {
            run(LinkResetTracing.detachCommands(previouslyEnabled: previouslyEnabled, restoreLogTo: "/dev/stderr")) { _ in }
        }
        apply(watch.detached("broker stopping"))
        stopFollowing()
    }

    /// The VMM went away: its log target went with it.
    func upstreamLost() {
        apply(watch.detached("VMM disconnected"))
        stopFollowing()
    }

    /// Asks QEMU whether the watched events are still on (after a client command that
    /// could have changed them, and periodically); re-asserts them when not. QEMU cannot
    /// be asked where its log goes, so `logfile` is sent again too: a redirect made behind
    /// the broker's back (QEMU's own monitor) lasts at most one check.
    func verify() {
        guard watch.isIntact, vm.upstream.isReady, !verifyPending else { return }
        guard reader.isStillAtPath else { return apply(watch.logReplaced()) }
        verifyPending = true
        let logFile = TracingCommand.setLogFile(path: logPath)
        run(LinkResetTracing.stateQueries + [logFile]) { [weak self] replies in
            guard let self else { return }
            verifyPending = false
            guard replies.count == LinkResetTracing.stateQueries.count + 1, let last = replies.last else { return }
            if let failure = logFile.check(reply: last) { return apply(watch.attachFailed("\(failure)")) }
            var states: [String: Bool] = [:]
            for reply in replies.dropLast() { states.merge(TracingCommand.traceEventStates(fromReply: reply)) { $1 } }
            let disabled = LinkResetTracing.traceEvents.filter { states[$0] == false }
            apply(watch.verified(disabled: disabled))
        }
    }

    private func apply(_ actions: [LinkResetWatch.Action]) {
        let reason = watch.reason
        vm.board.update(vm.configuration.name) { [watch] in
            $0.linkResetWatch = watch.isIntact
            $0.linkResetWatchReason = reason
        }
        for action in actions {
            switch action {
            case .announce(let active, let reason):
                if active {
                    logger.info("watching for guest link resets", metadata: ["trace-log": "\(logPath)"])
                } else {
                    logger.error("guest link resets are not watched", metadata: ["reason": "\(reason)"])
                }
                vm.emit("BROKER_LINK_RESET_WATCH",
                        data: BrokerEventData.linkResetWatch(vm: vm.configuration.name, active: active, reason: reason))
            case .reassert:
                logger.warning("re-asserting the trace events the broker watches")
                _ = watch.attachStarted()
                switchTracingOn()
            case .reattach:
                logger.debug("attaching the trace log again", metadata: ["trace-log": "\(logPath)"])
                attach()
            case .verify:
                verify()
            }
        }
    }

    /// Sends commands one after another; `checked` stops at the first failed one.
    private func run(_ commands: [TracingCommand], completion: @escaping ([JSON]) -> Void) {
        run(commands, checked: false) { replies, _ in completion(replies) }
    }

    private func run(_ commands: [TracingCommand], checked: Bool, index: Int = 0, replies: [JSON] = [],
                     completion: @escaping ([JSON], String?) -> Void) {
        guard index < commands.count else { return completion(replies, nil) }
        let command = commands[index]
        vm.upstream.send(command.message) { [weak self] result in
            guard let self else { return }
            guard case .reply(let line) = result, let reply = line.json else { return completion(replies, nil) }
            if checked, let failure = command.check(reply: reply) {
                // The reason reaches the watch, which announces (and logs) it once.
                logger.debug("QEMU refused a tracing command",
                             metadata: ["command": "\(command.name)", "reason": "\(failure)"])
                return completion(replies, "QEMU refused \(command.name): \(failure)")
            }
            run(commands, checked: checked, index: index + 1, replies: replies + [reply], completion: completion)
        }
    }

    private func startTicking() {
        guard !verifyTimer.isArmed else { return }
        verifyTimer.repeating(everyMilliseconds: Self.verifyIntervalMilliseconds) { [weak self] in
            guard let self else { return }
            apply(watch.tick())
        }
    }

    // MARK: following the file

    private func stopFollowing() {
        verifyTimer.cancel()
        reader.close()
    }

    /// Nothing is judged before the watch is intact: the topology must be known.
    private func readAppended() {
        guard watch.isIntact else { return }
        reader.read { [self] event, late in handle(event, late: late) }
    }

    // MARK: what the trace says

    private func handle(_ event: QEMUTraceLine.Event, late: Bool) {
        if case .configWrite(let access) = event { configWrite(access, late: late) }
        if case .systemReset(.begin) = event { detector.forgetAll() }
        switch classifier.observe(event) {
        case .guestHotReset(let host)?:
            for device in vm.recovery.orderedDevices where device.host.description == host {
                vm.recovery.guestLinkReset(device, origin: .guestHotReset, late: late)
            }
        case .systemReset?, nil:
            break
        }
    }

    private func configWrite(_ access: PCIConfigAccess, late: Bool) {
        if case .asserted(let bridge)? = detector.observe(access) {
            let below = topology.bridges(below: bridge)
            detector.forget(below)
            for device in devices(below: bridge) { vm.recovery.guestLinkReset(device, origin: .guestLinkReset, late: late) }
            // The reset cleared the bus numbers of bridges below: their subtrees move.
            if !below.isEmpty { refreshTopology() }
        }
        if topology.needsRefresh(after: access) { refreshTopology() }
    }

    private func devices(below bridge: GuestPCIAddress) -> [WatchedDevice] {
        let watched = vm.recovery.orderedDevices
        let listed = Set(topology.devices(below: bridge, among: Set(watched.map(\.id))))
        return watched.filter { listed.contains($0.id) || bridgesViaQOM[$0.id]?.contains(bridge) == true }
    }

    /// A system reset (QMP `RESET`): every Bridge Control is 0 again, bus numbers may change.
    func systemReset() {
        detector.forgetAll()
        refreshTopology()
    }

    /// Re-reads `query-pci`, then each watched device's bridge through QOM; `completion`
    /// runs when both are in. Requests arriving meanwhile are folded into one more round.
    func refreshTopology(completion: (() -> Void)? = nil) {
        if let completion { refreshWaiters.append(completion) }
        guard !refreshPending else {
            refreshAgain = true
            return
        }
        refreshPending = true
        vm.upstream.execute("query-pci") { [weak self] result in
            guard let self else { return }
            if case .reply(let line) = result, let reply = line.json?["return"],
               let topology = try? PCITopology(queryPCI: reply) {
                self.topology = topology
                detector.forgetAll()
            }
            resolveBridgesViaQOM { [weak self] in
                guard let self else { return }
                refreshPending = false
                let waiters = refreshWaiters
                refreshWaiters = []
                waiters.forEach { $0() }
                if refreshAgain {
                    refreshAgain = false
                    refreshTopology()
                }
            }
        }
    }

    /// Each device's bridge through QOM's `parent_bus` (`/machine/peripheral/rp0/rp0` →
    /// `rp0`), then the bridges above that one: this holds even while `query-pci` does
    /// not list the device (behind a bridge whose bus number is still 0).
    private func resolveBridgesViaQOM(completion: @escaping () -> Void) {
        let devices = vm.recovery.orderedDevices
        var remaining = devices.count
        guard remaining > 0 else { return completion() }
        for device in devices {
            let path = device.id.hasPrefix("/") ? device.id : "/machine/peripheral/\(device.id)"
            vm.upstream.execute("qom-get", arguments: .object(["path": .string(path), "property": .string("parent_bus")])) {
                [weak self] result in
                guard let self else { return }
                if case .reply(let line) = result, let bus = line.json?["return"]?.string {
                    let bridgePath = bus.split(separator: "/").dropLast().joined(separator: "/")
                    if bridgePath.hasPrefix("machine/peripheral"),
                       let bridgeID = bridgePath.split(separator: "/").last.map(String.init),
                       let bridge = topology.function(id: bridgeID) {
                        bridgesViaQOM[device.id] = [bridge.address] + topology.bridges(above: bridgeID).map(\.address)
                    }
                }
                remaining -= 1
                if remaining == 0 { completion() }
            }
        }
    }
}
