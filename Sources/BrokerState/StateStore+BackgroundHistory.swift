import Dispatch
import Synchronization

/// How history is kept trim: the retention in force and writes since the last prune.
struct HistoryUpkeep {
    var retention = HistoryRetention()
    var writesSincePrune = 0
    /// Pruning costs a scan of the time index: once per this many records is plenty.
    static let pruneEvery = 1000
}

extension StateStore {
    /// What `recordHistoryLater` keeps; applied at once and then every 1000 records.
    public func setHistoryRetention(_ retention: HistoryRetention) {
        historyUpkeep.withLock { $0 = HistoryUpkeep(retention: retention, writesSincePrune: 0) }
        historyQueue.async { _ = try? self.pruneHistory(retention) }
    }

    /// Records a history line on the history writer's thread, so that a VM's queue never
    /// waits for the disk. Order between records is kept (one serial queue).
    /// `onFailure` runs on that thread: a failed history write loses a line of the
    /// operator's record, never a flag.
    public func recordHistoryLater(_ record: HistoryRecord,
                                   onFailure: @escaping @Sendable (StateStoreError) -> Void = { _ in }) {
        historyQueue.async {
            do throws(StateStoreError) {
                try self.recordHistory(record)
                let retention = self.historyUpkeep.withLock { upkeep -> HistoryRetention? in
                    upkeep.writesSincePrune += 1
                    guard upkeep.writesSincePrune >= HistoryUpkeep.pruneEvery else { return nil }
                    upkeep.writesSincePrune = 0
                    return upkeep.retention
                }
                if let retention { try self.pruneHistory(retention) }
            } catch {
                onFailure(error)
            }
        }
    }

    /// Returns once every record queued before the call is written (tests, shutdown).
    public func waitForHistoryWrites() {
        historyQueue.sync {}
    }
}
