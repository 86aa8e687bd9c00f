import BrokerState
import EventLoop
import KernelTracepoint
import Logging
import VFIOWatch

/// Everything one broker process serves: a `VMBroker` per VM, spread over the loops of a group.
public final class Broker: Sendable {
    package let board = BrokerStatusBoard()
    /// The VMs served now (a reload adds and removes some).
    package var vms: [VMBroker] { served.all }
    private let served: ServedVMs
    private let store: StateStore?
    private let logger: Logger
    private let group: EventLoopGroup
    /// One netlink socket for the whole process, on the first loop; each uevent goes to the
    /// VMs on their loops.
    private let uevents: UEventMonitorHandle
    /// One `ras:aer_event` subscription for the whole process, beside the uevent socket;
    /// each record goes to the VMs on their loops.
    private let aerTracepoint: AERTracepointHandle

    /// `stateDirectory` holds the SQLite file with link-error flags and error history; without
    /// one, flags live only as long as the process.
    /// `historyRetention` bounds that history by age and rows.
    public init(vms configurations: [VMConfiguration], stateDirectory: String? = nil,
                historyRetention: HistoryRetention = HistoryRetention(), group: EventLoopGroup = .shared,
                logger: Logger) throws(StateStoreError) {
        self.logger = logger
        self.group = group
        let board = self.board
        let store = try stateDirectory.map { (directory) throws(StateStoreError) in
            try StateStore(path: "\(directory)/qmp-broker.sqlite")
        }
        store?.setHistoryRetention(historyRetention)
        self.store = store
        let served = ServedVMs(configurations.map {
            VMBroker(configuration: $0, board: board, store: store, loop: group.next(), logger: logger)
        })
        self.served = served
        uevents = UEventMonitorHandle(loop: group.loops[0], logger: logger) { event in
            for vm in served.all { vm.deliver(event) }
        }
        aerTracepoint = AERTracepointHandle(loop: group.loops[0], logger: logger, handler: { event, emitted in
            for vm in served.all { vm.deliver(event, emittedAt: emitted) }
        }, onLost: { count in
            for vm in served.all { vm.aerTraceRecordsLost(count) }
        })
    }

    /// Opens every VM's socket and starts attaching; a socket that cannot be opened fails the start.
    /// Kernel uevents are optional: without them (no permission, no netlink) host
    /// recovery is learnt from `vfio-link-error-clear` only, and that is logged once.
    public func start() throws(SystemCallError) {
        do {
            try uevents.start()
        } catch {
            logger.notice("kernel uevents unavailable; host recovery will not clear flags by itself",
                          metadata: ["reason": "\(error)"])
        }
        let hearsAERTracepoint: Bool
        do {
            try aerTracepoint.start()
            hearsAERTracepoint = true
            logger.notice("host AER errors announced by the kernel's ras:aer_event tracepoint")
        } catch {
            hearsAERTracepoint = false
            logger.notice("ras:aer_event tracepoint unavailable; host AER counters are polled instead",
                          metadata: ["reason": "\(error)"])
        }
        for vm in vms {
            try vm.start()
            vm.hearsAERTracepoint(hearsAERTracepoint)
            logger.info("serving", metadata: [
                "vm": "\(vm.configuration.name)", "socket": "\(vm.configuration.socketPath)",
                "upstream": "\(vm.configuration.upstreamPath)",
            ])
        }
    }

    public func stop() {
        uevents.cancel()
        aerTracepoint.cancel()
        // Every VM detaches at once; each waits for its own VMM's answers, at most a bound.
        let stopped = Semaphore()
        let stopping = vms
        for vm in stopping { vm.beginStop { stopped.signal() } }
        for _ in stopping { stopped.wait() }
        // History rows still queued for the writer land before a clean exit.
        store?.waitForHistoryWrites()
    }

    /// Delivers a uevent datagram as if the kernel had sent it (demo drills and tests use
    /// this to play a host recovery; real ones arrive through the netlink socket).
    public func deliverUEvent(_ datagram: [UInt8]) {
        guard case .event(let event) = UEvent.parse(datagram) else { return }
        for vm in vms { vm.deliver(event) }
    }

    /// Delivers a `ras:aer_event` record as if the kernel had emitted it (tests and drills;
    /// real ones arrive through the perf subscription).
    package func deliverAERTraceEvent(_ event: AERTraceEvent) {
        for vm in vms { vm.deliver(event) }
    }

    /// Applies a reloaded configuration (already validated as a whole): VMs that are
    /// gone stop, new ones start, a VM whose devices alone changed keeps its clients and
    /// has its devices reconciled; any other change restarts that VM. One line per change.
    public func reload(_ configurations: [VMConfiguration]) -> [String] {
        var changes: [String] = []
        let wanted = Set(configurations.map(\.name))
        for vm in served.all where !wanted.contains(vm.configuration.name) {
            vm.stop()
            served.remove(vm.configuration.name)
            changes.append("VM \(vm.configuration.name) removed")
        }
        for configuration in configurations {
            if let running = served.applied(configuration.name) {
                var bare = running.configuration
                bare.recovery.devices = []
                var target = configuration
                target.recovery.devices = []
                if bare == target {
                    let vm = running.vm
                    changes += vm.reconcile(configuration.recovery.devices)
                        .map { "VM \(configuration.name): \($0)" }
                    served.setApplied(configuration)
                    continue
                }
                running.vm.stop()
                served.remove(configuration.name)
                changes.append("VM \(configuration.name) restarted (its settings changed; its clients were disconnected)")
            } else {
                changes.append("VM \(configuration.name) added")
            }
            let vm = VMBroker(configuration: configuration, board: board, store: store, loop: group.next(), logger: logger)
            do {
                try vm.start()
                vm.hearsAERTracepoint(aerTracepoint.isRunning)
                served.add(vm)
            } catch {
                changes.append("VM \(configuration.name) cannot start: \(error)")
            }
        }
        return changes
    }
}
