import BrokerState
import EventLoop
import ErrorEvents
import Glibc
import LinkResetTrace
import Logging
import QMPWire

/// Watches a stock QEMU for guest link resets of watched devices: at attach it points
/// QEMU's log at a regular file the broker owns and turns on the trace events
/// (`LinkResetTracing`), then follows that file with inotify on the VM's loop. A Secondary
/// Bus Reset on a bridge above a watched device, or a vfio hot reset outside a system
/// reset, becomes a `guestLinkReset` input of that device's machine.
final class LinkResetWatcher {
    /// A watched device as the follower needs it: its QEMU id and host address.
    struct Watched: Equatable {
        let id: String
        let host: String
    }

    private let vmName: String
    private let board: BrokerStatusBoard
    /// Actions for the VM: returned from inputs, handed over from the file, the probes and
    /// the check timer.
    let outbox = ActionOutbox()
    /// The watched devices, in the order they were added (`watching`).
    private var watched: [Watched] = [] {
        didSet { watchedIDs = Set(watched.map(\.id)) }
    }
    /// `watched`'s ids, for the reset path's lookups.
    private var watchedIDs: Set<String> = []
    /// The attached VMM's process; nil while detached.
    private var vmm: VMMProcess?
    private let logger: Logger
    let logPath: String
    private let reader: TraceLogReader
    /// The trace log's owner and mode as configured (the VMM's own owner by default).
    private let access: TraceLogAccess
    private let verifyTimer: LoopTimer
    private var detector = SecondaryBusResetDetector()
    private var classifier = HotResetClassifier()
    private var topology = PCITopology.empty
    /// Bridges above each watched device found through QOM (`parent_bus`), for devices
    /// `query-pci` does not list yet (behind a bridge whose bus number is still 0).
    private var bridgesViaQOM: [String: [GuestPCIAddress]] = [:]
    /// The tracing attach, check, topology refresh and detach, as a value.
    private(set) var attachment: TraceAttachment
    /// How often QEMU's trace state is re-checked when no client command gave cause, and
    /// a broken watch tried again.
    private let checkMilliseconds: Int
    /// The canary in flight: the broker id it was sent with, and how long the file was then.
    private var canary: (id: Int64, since: Int64)?
    /// The file's size when the canary was sent, until its id is known.
    private var canarySince: Int64 = 0
    /// The file's size when `logfile` was sent, to tell a truncating reopen (QEMU ≥ 8).
    private var sizeBeforeLogFile: Int64 = 0
    /// Whether a detach is under way (the VM waits for `.watchDetached`).
    private var detaching = false
    /// QEMU's own stderr: lines the broker did not ask for go on there (`VMMStderr`).
    private let vmmStderr: VMMStderr
    private var passThrough: TraceLinePassThrough?
    /// The tracing commands as sent, by command (a handful: the checks repeat them).
    private var encodedCommands: [TracingCommand: [UInt8]] = [:]
    /// QEMU's USDT probes, preferred over the log when the VMM's binary has them.
    private let usdt: USDTLinkResetSource

    init(vmName: String, logPath: String, access: TraceLogAccess, store: StateStore?, loop: EventLoop,
         board: BrokerStatusBoard, checkMilliseconds: Int, logger: Logger) {
        self.checkMilliseconds = checkMilliseconds
        self.vmName = vmName
        self.verifyTimer = LoopTimer(loop: loop)
        self.board = board
        self.logPath = logPath
        self.logger = logger
        self.attachment = TraceAttachment(logPath: logPath)
        self.access = access
        reader = TraceLogReader(path: logPath, vm: vmName, store: store, loop: loop, logger: logger)
        vmmStderr = VMMStderr(logger: logger)
        usdt = USDTLinkResetSource(loop: loop, checkMilliseconds: checkMilliseconds, logger: logger)
        reader.onAppended = { [weak self] in
            guard let self else { return }
            outbox.handOver { readAppended() }
        }
        reader.onLine = { [weak self] line in self?.passOn(line) }
        wireUSDT()
    }

    // MARK: attach and detach

    /// Whether guest link resets are seen now, and what was announced.
    var watch: LinkResetWatch { usdt.isActive ? usdt.watch : attachment.watch }

    /// The VMM is (again) ready: arm its USDT probes, or else follow the log file and
    /// switch tracing on.
    func attach(_ vmm: VMMProcess) -> [VMAction] {
        outbox.collect {
            self.vmm = vmm
            let armed = usdt.attach(vmmPID: vmm.pid)
            publishUSDT()
            if !armed { apply(attachment.attach()) }
        }
    }

    /// Switches off what the attach switched on and gives QEMU's log back, each command
    /// answered, then asks for `.watchDetached`; stops following at once. The VMM may be
    /// gone: then that comes when its link fails what is pending.
    func detach() -> [VMAction] {
        outbox.collect {
            detaching = true
            usdt.detach()
            apply(attachment.detach())
        }
    }

    /// The VMM went away: its log target went with it.
    func upstreamLost() -> [VMAction] {
        outbox.collect {
            vmm = nil
            usdt.upstreamLost()
            apply(attachment.upstreamLost())
        }
    }

    /// Checks that QEMU still traces into the broker's file (after a client command that
    /// could have changed it).
    func verify() -> [VMAction] { outbox.collect { apply(attachment.verify()) } }

    /// The canary went out with broker id `id`: that id is looked for in the file.
    func canarySent(id: Int64?) { canary = id.map { ($0, canarySince) } }

    /// The reply to one of the attachment's tracing commands.
    func answered(exchange: Int, _ result: UpstreamReply) -> [VMAction] {
        outbox.collect {
            var reply: JSON?
            if case .reply(let line) = result { reply = line.json }
            apply(attachment.answered(exchange: exchange, reply: reply))
        }
    }

    /// The USDT canary went out with broker id `id`.
    func usdtCanarySent(id: Int64?) { usdt.canarySent(id: id) }

    /// The reply to the USDT canary.
    func usdtCanaryAnswered(_ result: UpstreamReply) -> [VMAction] {
        outbox.collect { usdt.canaryAnswered(result) }
    }

    /// The devices recovery watches changed: the topology is read again.
    func watching(_ devices: [Watched]) -> [VMAction] {
        watched = devices
        return outbox.collect { refreshTopologyNow() }
    }

    private func apply(_ actions: [TraceAttachment.Action]) {
        for action in actions {
            switch action {
            case .send(let command, let exchange):
                if case .setLogFile = command { sizeBeforeLogFile = reader.currentSize ?? 0 }
                outbox.ask(.encodedCommand(command.name, members: encoded(command), purpose: .linkResetWatch(exchange: exchange)))
            case .sendCanary(let command, let exchange):
                // The id it goes out with comes back through `canarySent`.
                canarySince = reader.currentSize ?? 0
                canary = nil
                outbox.ask(.encodedCommand(command.name, members: encoded(command), purpose: .linkResetCanary(exchange: exchange)))
            case .checkCanary:
                let seen = canary.map { reader.hasCanary(id: String($0.id), since: $0.since) } ?? false
                canary = nil
                apply(attachment.canaryChecked(seen: seen))
            case .logReopened:
                reader.reopenedByQEMU(sizeBefore: sizeBeforeLogFile)
            case .checkLogHolder:
                // A file this attach created is not QEMU's yet: its descriptors (hundreds in
                // QEMU, thousands in a process serving many VMMs) need no look.
                let holds = reader.fileIsNew ? false : reader.fileIdentity.flatMap { identity in
                    vmm?.pid.flatMap { VMMProcess.holdsFile($0, device: identity.device, inode: identity.inode) }
                }
                apply(attachment.logHolderChecked(holdsIt: holds))
            case .detachFinished:
                if detaching { outbox.ask(.watchDetached) }
                detaching = false
            case .openLog:
                let pid = vmm?.pid
                // Before any `logfile`: a restore to /proc/self/fd/2 needs QEMU able to reopen it.
                vmmStderr.open(vmmPID: pid, vmmOwner: pid.flatMap(VMMProcess.owner(of:)))
                do throws(TraceLogFile.Failure) {
                    try reader.open(access: access.resolved(forVMM: pid))
                    apply(attachment.logOpened())
                } catch {
                    apply(attachment.logOpenFailed("\(error)"))
                }
            case .checkLog:
                apply(attachment.logChecked(stillOurs: reader.isStillAtPath))
            case .readTopology:
                outbox.ask(.readTopology)
            case .startFollowing:
                startPassingOn()
                readAppended()  // what QEMU logged while the broker was away
                reader.savePosition()  // a first run too: a restart must know where to resume
            case .stopFollowing:
                verifyTimer.cancel()
                reader.close()
                passThrough = nil
                vmmStderr.close()
            case .startTicking:
                startTicking()
            case .publish(let intact, let reason):
                board.update(vmName) {
                    $0.linkResetWatch = intact
                    $0.linkResetWatchReason = reason
                }
                outbox.ask(.protectionChanged)
            case .announce(let active, let reason):
                announce(active: active, reason: reason, source: ["trace-log": "\(logPath)"])
            case .note(.reasserting):
                logger.warning("re-asserting the trace events the broker watches")
            case .note(.reattaching):
                logger.debug("attaching the trace log again", metadata: ["trace-log": "\(logPath)"])
            case .note(.refused(let command, let reason)):
                logger.debug("QEMU refused a tracing command", metadata: ["command": "\(command)", "reason": "\(reason)"])
            }
        }
    }

    private func startTicking() {
        guard !verifyTimer.isArmed else { return }
        verifyTimer.repeating(everyMilliseconds: checkMilliseconds) { [weak self] in
            guard let self else { return }
            outbox.handOver {
                // A wakeup inotify lost (its queue overflows under load) costs at most one period.
                readAppended()
                apply(attachment.tick())
            }
        }
    }

    // MARK: following the file

    /// Lines the broker did not ask for go on to QEMU's stderr, unless that stderr is the
    /// broker's file itself (a `-daemonize`d QEMU `dup2`s its log onto fd 2).
    private func startPassingOn() {
        guard vmmStderr.isOpen, let identity = reader.fileIdentity, !vmmStderr.isFile(identity) else {
            vmmStderr.close()
            return
        }
        passThrough = TraceLinePassThrough(brokerEvents: LinkResetTracing.traceEvents + [LinkResetTracing.canaryEvent],
                                           previouslyEnabled: attachment.previouslyEnabled)
    }

    private func passOn(_ line: UnsafeBufferPointer<UInt8>) {
        guard let passThrough, passThrough.passesOn(line) else { return }
        vmmStderr.write(line: line)
    }

    /// Nothing is judged before the watch is intact: the topology must be known.
    private func readAppended() {
        guard attachment.isIntact else { return }
        reader.read { [self] event, late in handle(event, late: late) }
    }

    // MARK: what the trace says

    /// A link reset goes to the VM at once (`askFirst`): its stop races the guest, and must
    /// not wait for the rest of the read or the lines after it. A late one (logged while no
    /// broker ran) races nothing, and keeps its place behind the input's other actions.
    func handle(_ event: QEMUTraceLine.Event, late: Bool) {
        if case .configWrite(let access) = event { configWrite(access, late: late) }
        if case .systemReset(.begin) = event { detector.forgetAll() }
        switch classifier.observe(event) {
        case .guestHotReset(let host)?:
            for device in watched where device.host == host {
                report(.guestLinkReset(device: device.id, origin: .guestHotReset, late: late), late: late)
            }
        case .systemReset?, nil:
            break
        }
    }

    private func report(_ reset: VMAction, late: Bool) {
        if late { outbox.ask(reset) } else { outbox.askFirst(reset) }
    }

    /// A tracing command's bytes, encoded once: each check sends the same five again.
    private func encoded(_ command: TracingCommand) -> [UInt8] {
        if let members = encodedCommands[command] { return members }
        let members = command.members
        encodedCommands[command] = members
        return members
    }

    private func configWrite(_ access: PCIConfigAccess, late: Bool) {
        if case .asserted(let bridge)? = detector.observe(access) {
            let below = topology.bridges(below: bridge)
            detector.forget(below)
            for device in devices(below: bridge) {
                report(.guestLinkReset(device: device.id, origin: .guestLinkReset, late: late), late: late)
            }
            // The reset cleared the bus numbers of bridges below: their subtrees move.
            if !below.isEmpty { refreshTopologyNow() }
        }
        if topology.needsRefresh(after: access) { refreshTopologyNow() }
    }

    private func devices(below bridge: GuestPCIAddress) -> [Watched] {
        let listed = topology.devices(below: bridge, among: watchedIDs)
        return watched.filter { listed.contains($0.id) || bridgesViaQOM[$0.id]?.contains(bridge) == true }
    }

    /// A system reset (QMP `RESET`): every Bridge Control is 0 again, bus numbers may change.
    func systemReset() -> [VMAction] {
        outbox.collect {
            detector.forgetAll()
            apply(attachment.systemReset())
        }
    }

    /// Re-reads `query-pci`, then each watched device's bridge through QOM (folded into
    /// one more round when one is under way).
    private func refreshTopologyNow() { apply(attachment.refreshTopology()) }

    /// The topology `VMBroker.readTopology` learnt: `query-pci`'s listing (nil when it
    /// failed: the last one is kept) and each watched device's QOM `parent_bus`, whose port
    /// and the bridges above it count as the device's bridges.
    func topologyRead(_ listing: PCITopology?, parentBuses: [String: String], vmmReady: Bool) -> [VMAction] {
        outbox.collect { learnt(listing, parentBuses: parentBuses, vmmReady: vmmReady) }
    }

    private func learnt(_ listing: PCITopology?, parentBuses: [String: String], vmmReady: Bool) {
        if let listing {
            topology = listing
            detector.forgetAll()
        }
        for (device, bus) in parentBuses {
            guard let bridgeID = VFIORecovery.portOwning(bus: bus), let bridge = topology.function(id: bridgeID) else { continue }
            bridgesViaQOM[device] = [bridge.address] + topology.bridges(above: bridgeID).map(\.address)
        }
        apply(attachment.topologyRead(vmmReady: vmmReady))
        usdt.topologyRead()
    }
}

// MARK: the USDT source

extension LinkResetWatcher {
    private func wireUSDT() {
        // The probes' hits and timer come from their own descriptors: handed over.
        usdt.onEvent = { [unowned self] event in outbox.handOver { handle(event, late: false) } }
        usdt.onTopologyWanted = { [unowned self] in outbox.ask(.readTopology) }
        usdt.onPublish = { [unowned self] intact, reason in publish(intact: intact, reason: reason) }
        usdt.onAnnounce = { [unowned self] active, reason in announce(active: active, reason: reason) }
        usdt.onCanary = { [unowned self] in outbox.ask(.command("query-status", purpose: .usdtCanary)) }
        usdt.onTick = { [unowned self] tick in outbox.handOver(tick) }
        // The probes could not be re-armed: the log watches where QEMU has the log backend.
        usdt.onFallback = { [unowned self] in
            publishUSDT()
            apply(attachment.attach())
        }
    }

    /// Which source watches, and why USDT does not where it does not.
    var source: LinkResetSource {
        guard watch.isIntact else { return .none }
        return usdt.isActive ? .usdt : .traceLog
    }

    /// Whether the probes watch, and why not; `query-broker` derives `link-reset-source`.
    private func publishUSDT() {
        board.update(vmName) {
            $0.linkResetUSDT = usdt.isActive
            $0.linkResetUSDTUnavailable = usdt.unavailableReason
        }
    }

    private func publish(intact: Bool, reason: String?) {
        board.update(vmName) {
            $0.linkResetWatch = intact
            $0.linkResetWatchReason = reason
        }
        publishUSDT()
        outbox.ask(.protectionChanged)
    }

    /// `BROKER_LINK_RESET_WATCH`, and a log line that says which source watches.
    func announce(active: Bool, reason: String, source: Logger.Metadata = ["source": "usdt"]) {
        if active {
            logger.info("watching for guest link resets", metadata: source)
        } else {
            logger.error("guest link resets are not watched", metadata: ["reason": "\(reason)"])
        }
        outbox.ask(.emit("BROKER_LINK_RESET_WATCH", data: BrokerEventData.linkResetWatch(vm: vmName, active: active, reason: reason)))
    }
}
