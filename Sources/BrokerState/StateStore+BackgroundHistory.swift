import ErrorEvents

/// The event path's writes that may wait: history rows and AER baselines go to the store's
/// `HistoryWriter`, one serial queue, in order. Flags do not (`saveState`).
extension StateStore {
    /// What the writer keeps; applied at once and then every 1000 records.
    package func setHistoryRetention(_ retention: HistoryRetention) {
        writer.setRetention(retention)
        _ = writer.enqueue { _ = try? self.pruneHistory(retention) }
    }

    /// Records a history line (with an error's `counters`, in the same transaction) on the
    /// writer's thread. `onFailure` runs on that thread: a failed history write loses a line
    /// of the operator's record, never a flag.
    @discardableResult
    package func recordHistoryLater(_ record: HistoryRecord, counters: DeviceErrorCounters? = nil,
                                   onFailure: @escaping @Sendable (StateStoreError) -> Void = { _ in }) -> HistoryHandOff {
        writer.enqueue {
            do throws(StateStoreError) {
                try self.recordHistory(record, counters: counters)
                if let retention = self.writer.countWrite() { try self.pruneHistory(retention) }
            } catch {
                onFailure(error)
            }
        }
    }

    /// `saveAERBaseline` on the writer's thread, after the history rows of the errors it counts.
    @discardableResult
    package func saveAERBaselineLater(vm: String, device: String, host: String, counters: String,
                                     onFailure: @escaping @Sendable (StateStoreError) -> Void = { _ in }) -> HistoryHandOff {
        writer.enqueue {
            do throws(StateStoreError) {
                try self.saveAERBaseline(vm: vm, device: device, host: host, counters: counters)
            } catch {
                onFailure(error)
            }
        }
    }

    /// Returns once every write queued before the call is done (tests, shutdown).
    package func waitForHistoryWrites() {
        writer.waitForQueued()
    }

    /// Writes the writer dropped because it was too far behind, since the store opened.
    package var droppedHistoryWrites: Int { writer.dropped }
}
