/// The id-rewrite table: every command sent upstream carries a broker-chosen integer
/// id, so replies from one shared VMM monitor find their way back to whoever asked,
/// with the asker's own id restored. Broker ids never reach a client.
struct PendingCommands<Waiter> {
    private var nextID: Int64 = 1
    private var waiting: [Int64: Waiter] = [:]

    var count: Int { waiting.count }

    /// Registers a waiter and returns the id to send upstream.
    mutating func register(_ waiter: Waiter) -> Int64 {
        let id = nextID
        nextID += 1
        waiting[id] = waiter
        return id
    }

    /// The waiter for an upstream reply's `id`, removed from the table; nil for ids the
    /// broker never sent (logged by the caller and dropped, as `qemu.qmp` does).
    mutating func resolve(_ id: Int64?) -> Waiter? {
        guard let id else { return nil }
        return waiting.removeValue(forKey: id)
    }

    /// Everything still waiting, in the order it was sent; the table is left empty.
    mutating func drain() -> [Waiter] {
        let drained = waiting.sorted { $0.key < $1.key }.map(\.value)
        waiting.removeAll()
        return drained
    }

    /// Removes the waiters matching `predicate` (a client went away); returns how many.
    @discardableResult
    mutating func removeAll(where predicate: (Waiter) -> Bool) -> Int {
        let before = waiting.count
        waiting = waiting.filter { !predicate($0.value) }
        return before - waiting.count
    }
}
