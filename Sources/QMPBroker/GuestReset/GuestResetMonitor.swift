import Dispatch
import ErrorEvents
import Glibc
import Logging

/// Watches a stock QEMU for guest link resets of watched devices: at attach it points
/// QEMU's log at a regular file the broker owns and turns on the trace events
/// (`LinkResetTracing`), then follows that file with inotify on the VM's queue. A Secondary
/// Bus Reset on a bridge above a watched device, or a vfio hot reset outside a system
/// reset, becomes a `guestLinkReset` input of that device's machine.
final class GuestResetMonitor {
    private unowned let vm: VMBroker
    private let logger: Logger
    let logPath: String
    private var fileFD: Int32 = -1
    private var notifyFD: Int32 = -1
    private var source: DispatchSourceRead?
    private var splitter = TraceLogLineSplitter()
    private var detector = SecondaryBusResetDetector()
    private var classifier = HotResetClassifier()
    private var topology = PCITopology.empty
    /// Bridges above each watched device found through QOM (`parent_bus`), for devices
    /// `query-pci` does not list yet (behind a bridge whose bus number is still 0).
    private var bridgesViaQOM: [String: [GuestPCIAddress]] = [:]
    private var previouslyEnabled: Set<String> = []
    private(set) var tracing = false {
        didSet { vm.board.update(vm.configuration.name) { [tracing] in $0.linkResetWatch = tracing } }
    }
    private var refreshPending = false
    private var refreshAgain = false
    private var refreshWaiters: [() -> Void] = []

    init(vm: VMBroker, logPath: String, logger: Logger) {
        self.vm = vm
        self.logPath = logPath
        self.logger = logger
    }

    // MARK: attach and detach

    /// The VMM is (again) ready: follow the log file and switch tracing on.
    func attach() {
        guard LinkResetTracing.isUsableLogPath(logPath) else {
            logger.error("trace log path unusable by QEMU's logfile; guest link resets will not be seen",
                         metadata: ["path": "\(logPath)"])
            return
        }
        guard follow() else { return }
        run(LinkResetTracing.stateQueries) { [weak self] replies in
            guard let self else { return }
            previouslyEnabled = LinkResetTracing.previouslyEnabled(fromReplies: replies)
            let commands = LinkResetTracing.attachCommands(logPath: logPath)
            run(commands, checked: true) { [weak self] replies in
                guard let self, replies.count == commands.count else { return }
                // Watching starts once QEMU traces and the topology says which bridges matter.
                refreshTopology { [weak self] in
                    guard let self, !tracing else { return }
                    tracing = true
                    logger.info("watching for guest link resets", metadata: ["trace-log": "\(logPath)"])
                }
            }
        }
    }

    /// Gives QEMU's log back (to `/dev/stderr`: the broker cannot learn a VMM's `-D`) and
    /// stops following. Best effort: the VMM may already be gone.
    func detach() {
        if tracing && vm.upstream.isReady {
            run(LinkResetTracing.detachCommands(previouslyEnabled: previouslyEnabled, restoreLogTo: "/dev/stderr")) { _ in }
        }
        tracing = false
        stopFollowing()
    }

    /// The VMM went away: its log target went with it.
    func upstreamLost() {
        tracing = false
        stopFollowing()
    }

    /// Sends commands one after another; `checked` stops at the first failed one.
    private func run(_ commands: [TracingCommand], checked: Bool = false, index: Int = 0,
                     replies: [JSON] = [], completion: @escaping ([JSON]) -> Void) {
        guard index < commands.count else { return completion(replies) }
        let command = commands[index]
        vm.upstream.send(command.message) { [weak self] result in
            guard let self else { return }
            guard case .reply(let line) = result, let reply = line.json else { return completion(replies) }
            if checked, let failure = command.check(reply: reply) {
                logger.error("QEMU refused a tracing command; guest link resets will not be seen",
                             metadata: ["command": "\(command.name)", "reason": "\(failure)"])
                return completion(replies)
            }
            run(commands, checked: checked, index: index + 1, replies: replies + [reply], completion: completion)
        }
    }

    // MARK: following the file

    private func follow() -> Bool {
        stopFollowing()
        let created = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if created >= 0 {
            TraceLogAccess.apply(to: created, path: logPath, configuration: vm.configuration, logger: logger)
            close(created)
        }
        fileFD = open(logPath, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        notifyFD = inotify_init1(Int32(O_NONBLOCK | O_CLOEXEC))
        guard fileFD >= 0, notifyFD >= 0, inotify_add_watch(notifyFD, logPath, UInt32(IN_MODIFY)) >= 0 else {
            logger.error("cannot follow the trace log; guest link resets will not be seen",
                         metadata: ["path": "\(logPath)", "errno": "\(errno)"])
            stopFollowing()
            return false
        }
        // Lines from before this attach are history (another run's resets), not news.
        lseek(fileFD, 0, SEEK_END)
        splitter.reset()
        let source = DispatchSource.makeReadSource(fileDescriptor: notifyFD, queue: vm.queue)
        let notify = notifyFD
        source.setEventHandler { [weak self] in
            var events = [UInt8](repeating: 0, count: 4096)
            _ = read(notify, &events, events.count)
            self?.readAppended()
        }
        source.setCancelHandler { close(notify) }
        source.activate()
        self.source = source
        return true
    }

    private func stopFollowing() {
        if let source {
            source.cancel()  // closes the inotify fd
        } else if notifyFD >= 0 {
            close(notifyFD)
        }
        source = nil
        notifyFD = -1
        if fileFD >= 0 { close(fileFD) }
        fileFD = -1
    }

    private func readAppended() {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while fileFD >= 0 {
            let count = read(fileFD, &chunk, chunk.count)
            guard count > 0 else { return }
            chunk.withUnsafeBytes { bytes in
                splitter.feed(UnsafeRawBufferPointer(rebasing: bytes[..<count])) { line in
                    if let parsed = QEMUTraceLine.parse(line) { handle(parsed.event) }
                }
            }
        }
    }

    // MARK: what the trace says

    private func handle(_ event: QEMUTraceLine.Event) {
        if case .configWrite(let access) = event { configWrite(access) }
        if case .systemReset(.begin) = event { detector.forgetAll() }
        switch classifier.observe(event) {
        case .guestHotReset(let host)?:
            for device in vm.recovery.orderedDevices where device.host.description == host {
                vm.recovery.guestLinkReset(device, origin: .guestHotReset)
            }
        case .systemReset?, nil:
            break
        }
    }

    private func configWrite(_ access: PCIConfigAccess) {
        if case .asserted(let bridge)? = detector.observe(access) {
            let below = topology.bridges(below: bridge)
            detector.forget(below)
            for device in devices(below: bridge) { vm.recovery.guestLinkReset(device, origin: .guestLinkReset) }
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
