import Dispatch
import Synchronization

/// The store's one background writer. History rows (with the counters an error row carries)
/// and AER baselines are written on one serial queue, in the order they were handed over, so
/// that a VM's event loop never waits for the disk. A handed-over write is not durable until the
/// queue reaches it: a broker killed meanwhile loses what was still waiting (operator's record
/// and counters, never a flag: flags are written at once, see `StateStore.saveState`).
///
/// Bounded: with `capacity` writes waiting (a stalled disk), further ones are dropped and
/// counted rather than letting the broker's memory grow without end.
final class HistoryWriter: Sendable {
    /// About 0.3 s of inserts at the measured ~70 µs each; an error storm coalesces far below it.
    static let capacity = 4096

    private let queue = DispatchQueue(label: "qmp-broker.history", qos: .utility)
    private let backlog = Mutex(Backlog())

    struct Backlog {
        var waiting = 0
        var dropped = 0
        var upkeep = HistoryUpkeep()
    }

    /// Queues `write`, or counts it as dropped when `capacity` writes already wait.
    func enqueue(_ write: @escaping @Sendable () -> Void) -> HistoryHandOff {
        let handOff = backlog.withLock { backlog -> HistoryHandOff in
            guard backlog.waiting < Self.capacity else {
                backlog.dropped += 1
                return .dropped(total: backlog.dropped)
            }
            backlog.waiting += 1
            return .queued
        }
        guard handOff == .queued else { return handOff }
        queue.async {
            write()
            self.backlog.withLock { $0.waiting -= 1 }
        }
        return .queued
    }

    /// Runs `body` on the writer once every write queued before it is done: for writes that
    /// must not overtake queued ones (a device row carries the counters error rows update).
    /// Never call it from a queued write (it would wait for itself).
    func afterQueued<T>(_ body: () throws(StateStoreError) -> T) throws(StateStoreError) -> T {
        try queue.sync { Result { () throws(StateStoreError) in try body() } }.get()
    }

    /// Returns once every write queued before the call is done.
    func waitForQueued() {
        queue.sync {}
    }

    /// Writes dropped since the store opened.
    var dropped: Int { backlog.withLock(\.dropped) }

    /// The retention in force, and whether this write is the one that should prune.
    func countWrite() -> HistoryRetention? {
        backlog.withLock { backlog in
            backlog.upkeep.writesSincePrune += 1
            guard backlog.upkeep.writesSincePrune >= HistoryUpkeep.pruneEvery else { return nil }
            backlog.upkeep.writesSincePrune = 0
            return backlog.upkeep.retention
        }
    }

    func setRetention(_ retention: HistoryRetention) {
        backlog.withLock { $0.upkeep = HistoryUpkeep(retention: retention, writesSincePrune: 0) }
    }
}

/// What became of a write handed to the background writer.
package enum HistoryHandOff: Sendable, Equatable {
    case queued
    /// The writer was `HistoryWriter.capacity` writes behind; `total` dropped so far.
    case dropped(total: Int)
}

/// How history is kept trim: the retention in force and writes since the last prune.
struct HistoryUpkeep {
    var retention = HistoryRetention()
    var writesSincePrune = 0
    /// Pruning costs a scan of the time index: once per this many records is plenty.
    static let pruneEvery = 1000
}
