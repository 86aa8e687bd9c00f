import BrokerState
import Dispatch
import Logging
import VFIOWatch

/// Everything one broker process serves: a `VMBroker` per VM, each on its own queue.
public final class Broker: Sendable {
    public let board = BrokerStatusBoard()
    public let vms: [VMBroker]
    private let logger: Logger
    /// One netlink socket for the whole process; each uevent goes to the VMs on their queues.
    private let uevents: UEventMonitor
    private let ueventQueue = DispatchQueue(label: "qmp-broker.uevents")

    /// `stateDirectory` holds the SQLite file with link-error flags and error history; without
    /// one, flags live only as long as the process.
    /// `historyRetention` bounds that history by age and rows.
    public init(vms configurations: [VMConfiguration], stateDirectory: String? = nil,
                historyRetention: HistoryRetention = HistoryRetention(), logger: Logger) throws(StateStoreError) {
        self.logger = logger
        let board = self.board
        let store = try stateDirectory.map { (directory) throws(StateStoreError) in
            try StateStore(path: "\(directory)/qmp-broker.sqlite")
        }
        store?.setHistoryRetention(historyRetention)
        let vms = configurations.map { VMBroker(configuration: $0, board: board, store: store, logger: logger) }
        self.vms = vms
        uevents = UEventMonitor(queue: ueventQueue, logger: logger) { event in
            for vm in vms { vm.queue.async { vm.recovery.uevent(event) } }
        }
    }

    /// Opens every VM's socket and starts attaching; a socket that cannot be opened fails the start.
    /// Kernel uevents are optional: without them (no permission, no netlink) host
    /// recovery is learnt from `vfio-link-error-clear` only, and that is logged once.
    public func start() throws(SocketError) {
        ueventQueue.sync {
            do {
                try uevents.start()
            } catch {
                logger.notice("kernel uevents unavailable; host recovery will not clear flags by itself",
                              metadata: ["reason": "\(error)"])
            }
        }
        for vm in vms {
            try vm.start()
            logger.info("serving", metadata: [
                "vm": "\(vm.configuration.name)", "socket": "\(vm.configuration.socketPath)",
                "upstream": "\(vm.configuration.upstreamPath)",
            ])
        }
    }

    public func stop() {
        ueventQueue.sync { uevents.cancel() }
        for vm in vms { vm.stop() }
    }

    /// Delivers a uevent datagram as if the kernel had sent it (demo drills and tests use
    /// this to play a host recovery; real ones arrive through the netlink socket).
    public func deliverUEvent(_ datagram: [UInt8]) {
        guard case .event(let event) = UEvent.parse(datagram) else { return }
        for vm in vms { vm.queue.async { vm.recovery.uevent(event) } }
    }
}
