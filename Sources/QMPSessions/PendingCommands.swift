/// The id-rewrite table: every command sent upstream carries a broker-chosen integer
/// id, so replies from one shared VMM monitor find their way back to whoever asked,
/// with the asker's own id restored. Broker ids never reach a client.
///
/// Each entry is data: who asked, the client's id and reply slot, the command, its
/// deadline (monotonic milliseconds, from the caller), so each reply is handled without
/// looking elsewhere. A command the VMM never answers is expired and its requester told
/// so; a reply that comes later finds no entry and is dropped, as one with an id the
/// broker never sent.
///
/// Not generic: it is on every forwarded command, and called from another module an
/// unspecialised generic asks the runtime for its metadata at each call. The broker's
/// own awaited exchanges keep their continuations beside it, by id.
package struct PendingCommands {
    package init() {}

    package struct Entry {
        /// The id the command went upstream with.
        package let id: Int64
        package let command: PendingCommand
    }

    private var nextID: Int64 = 1
    private var waiting: [Int64: PendingCommand] = [:]

    /// Registers a command and returns the id to send upstream.
    package mutating func register(_ command: PendingCommand) -> Int64 {
        let id = nextID
        nextID += 1
        waiting[id] = command
        return id
    }

    /// The entry for an upstream reply's `id`, removed from the table; nil for ids the
    /// broker never sent or already gave up on (logged by the caller and dropped, as
    /// `qemu.qmp` does).
    package mutating func resolve(_ id: Int64?) -> Entry? {
        guard let id, let command = waiting.removeValue(forKey: id) else { return nil }
        return Entry(id: id, command: command)
    }

    /// The earliest deadline still waiting; nil when none has one.
    package var nextDeadline: UInt64? {
        waiting.values.lazy.map(\.deadline).filter { $0 != .max }.min()
    }

    /// Removes and returns, oldest first, the entries whose deadline is `now` or earlier.
    package mutating func expire(now: UInt64) -> [Entry] {
        let due = waiting.filter { $0.value.deadline <= now }.sorted { $0.key < $1.key }
        for (id, _) in due { waiting.removeValue(forKey: id) }
        return due.map { Entry(id: $0.key, command: $0.value) }
    }

    /// Everything still waiting, in the order it was sent; the table is left empty.
    package mutating func drain() -> [Entry] {
        let drained = waiting.sorted { $0.key < $1.key }.map { Entry(id: $0.key, command: $0.value) }
        waiting.removeAll()
        return drained
    }
}
