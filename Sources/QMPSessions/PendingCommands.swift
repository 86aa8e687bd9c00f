/// The id-rewrite table: every command sent upstream carries a broker-chosen integer
/// id, so replies from one shared VMM monitor find their way back to whoever asked,
/// with the asker's own id restored. Broker ids never reach a client.
///
/// Each entry has a deadline (monotonic milliseconds, from the caller): a command the VMM
/// never answers is expired and its waiter told so; a reply that comes later finds no
/// entry and is dropped, as one with an id the broker never sent.
public struct PendingCommands<Waiter> {
    public init() {}

    private struct Entry {
        let waiter: Waiter
        let deadline: UInt64
    }

    private var nextID: Int64 = 1
    private var waiting: [Int64: Entry] = [:]

    public var count: Int { waiting.count }

    /// Registers a waiter and returns the id to send upstream.
    public mutating func register(_ waiter: Waiter, deadline: UInt64 = .max) -> Int64 {
        let id = nextID
        nextID += 1
        waiting[id] = Entry(waiter: waiter, deadline: deadline)
        return id
    }

    /// The waiter for an upstream reply's `id`, removed from the table; nil for ids the
    /// broker never sent or already gave up on (logged by the caller and dropped, as
    /// `qemu.qmp` does).
    public mutating func resolve(_ id: Int64?) -> Waiter? {
        guard let id else { return nil }
        return waiting.removeValue(forKey: id)?.waiter
    }

    /// The earliest deadline still waiting; nil when none has one.
    public var nextDeadline: UInt64? {
        waiting.values.lazy.map(\.deadline).filter { $0 != .max }.min()
    }

    /// Removes and returns, oldest first, the waiters whose deadline is `now` or earlier.
    public mutating func expire(now: UInt64) -> [Waiter] {
        let due = waiting.filter { $0.value.deadline <= now }.sorted { $0.key < $1.key }
        for (id, _) in due { waiting.removeValue(forKey: id) }
        return due.map(\.value.waiter)
    }

    /// Everything still waiting, in the order it was sent; the table is left empty.
    public mutating func drain() -> [Waiter] {
        let drained = waiting.sorted { $0.key < $1.key }.map(\.value.waiter)
        waiting.removeAll()
        return drained
    }

    /// Removes the waiters matching `predicate` (a client went away); returns how many.
    @discardableResult
    mutating func removeAll(where predicate: (Waiter) -> Bool) -> Int {
        let before = waiting.count
        waiting = waiting.filter { !predicate($0.value.waiter) }
        return before - waiting.count
    }
}
