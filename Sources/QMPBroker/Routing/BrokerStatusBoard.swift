import Synchronization

/// What `query-broker` reports, published by each VM from its own event loop and read by
/// any other: VMs never wait on each other's queues.
package final class BrokerStatusBoard: Sendable {
    package struct VMStatus: Sendable, Equatable {
        package var name: String
        package var upstream: String
        package var connected: Bool
        package var clients: Int
        /// Whether QEMU's trace log is being followed for guest link resets.
        package var linkResetWatch: Bool = false
        /// Why the watch is not intact; nil while it is.
        package var linkResetWatchReason: String?
        /// Whether QEMU's USDT probes are armed (else the trace log is the channel).
        package var linkResetUSDT = false
        /// `usdt`, `trace-log` or `none`: which channel shows guest link resets now.
        package var linkResetSource: String { linkResetWatch ? (linkResetUSDT ? "usdt" : "trace-log") : "none" }
        /// Why QEMU's USDT probes are not used (no probes in the binary, perf refused).
        package var linkResetUSDTUnavailable: String?
    }

    private let statuses = Mutex<[String: VMStatus]>([:])

    package init() {}

    func update(_ name: String, _ change: (inout VMStatus) -> Void) {
        statuses.withLock { all in
            var status = all[name] ?? VMStatus(name: name, upstream: "", connected: false, clients: 0)
            change(&status)
            all[name] = status
        }
    }

    func remove(_ name: String) { _ = statuses.withLock { $0.removeValue(forKey: name) } }

    func status(of name: String) -> VMStatus? { statuses.withLock { $0[name] } }

    package var snapshot: [VMStatus] { statuses.withLock { $0.values.sorted { $0.name < $1.name } } }
}
