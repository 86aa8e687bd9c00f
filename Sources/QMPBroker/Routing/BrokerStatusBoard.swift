import Synchronization

/// What `query-broker` reports, published by each VM from its own event loop and read by
/// any other: VMs never wait on each other's queues.
public final class BrokerStatusBoard: Sendable {
    public struct VMStatus: Sendable, Equatable {
        public var name: String
        public var upstream: String
        public var connected: Bool
        public var clients: Int
        /// Whether QEMU's trace log is being followed for guest link resets.
        public var linkResetWatch: Bool = false
        /// Why the watch is not intact; nil while it is.
        public var linkResetWatchReason: String?
        /// Whether QEMU's USDT probes are armed (else the trace log is the channel).
        public var linkResetUSDT = false
        /// `usdt`, `trace-log` or `none`: which channel shows guest link resets now.
        public var linkResetSource: String { linkResetWatch ? (linkResetUSDT ? "usdt" : "trace-log") : "none" }
        /// Why QEMU's USDT probes are not used (no probes in the binary, perf refused).
        public var linkResetUSDTUnavailable: String?
    }

    private let statuses = Mutex<[String: VMStatus]>([:])

    public init() {}

    func update(_ name: String, _ change: (inout VMStatus) -> Void) {
        statuses.withLock { all in
            var status = all[name] ?? VMStatus(name: name, upstream: "", connected: false, clients: 0)
            change(&status)
            all[name] = status
        }
    }

    func remove(_ name: String) { _ = statuses.withLock { $0.removeValue(forKey: name) } }

    func status(of name: String) -> VMStatus? { statuses.withLock { $0[name] } }

    public var snapshot: [VMStatus] { statuses.withLock { $0.values.sorted { $0.name < $1.name } } }
}
