/// The id-rewrite table: every command sent upstream carries a broker-chosen integer
/// id, so replies from one shared VMM monitor find their way back to whoever asked,
/// with the asker's own id restored. Broker ids never reach a client.
///
/// Each entry is data: who asked, the client's id and reply slot, the command, its
/// deadline (monotonic milliseconds, from the caller) and what to do with the reply, so
/// each reply is handled without looking elsewhere. A command the VMM never answers is
/// expired and its requester told so; a reply that comes later finds no entry and is
/// dropped, as one with an id the broker never sent.
///
/// `Continuation` is for the broker's own multi-step exchanges that still continue in a
/// closure (QOM placement, discovery, injection); client commands never have one.
///
/// Inlinable: every forwarded command registers and resolves here, and an unspecialised
/// generic asks the runtime for its metadata at each call.
package struct PendingCommands<Continuation> {
    @inlinable package init() {}

    package struct Entry {
        package let command: PendingCommand
        package let continuation: Continuation?

        @inlinable package init(command: PendingCommand, continuation: Continuation?) {
            self.command = command
            self.continuation = continuation
        }
    }

    @usableFromInline var nextID: Int64 = 1
    @usableFromInline var waiting: [Int64: Entry] = [:]

    /// Registers a command and returns the id to send upstream.
    @inlinable package mutating func register(_ command: PendingCommand, continuation: Continuation? = nil) -> Int64 {
        let id = nextID
        nextID += 1
        waiting[id] = Entry(command: command, continuation: continuation)
        return id
    }

    /// The entry for an upstream reply's `id`, removed from the table; nil for ids the
    /// broker never sent or already gave up on (logged by the caller and dropped, as
    /// `qemu.qmp` does).
    @inlinable package mutating func resolve(_ id: Int64?) -> Entry? {
        guard let id else { return nil }
        return waiting.removeValue(forKey: id)
    }

    /// The earliest deadline still waiting; nil when none has one.
    @inlinable package var nextDeadline: UInt64? {
        waiting.values.lazy.map(\.command.deadline).filter { $0 != .max }.min()
    }

    /// Removes and returns, oldest first, the entries whose deadline is `now` or earlier.
    @inlinable package mutating func expire(now: UInt64) -> [Entry] {
        let due = waiting.filter { $0.value.command.deadline <= now }.sorted { $0.key < $1.key }
        for (id, _) in due { waiting.removeValue(forKey: id) }
        return due.map(\.value)
    }

    /// Everything still waiting, in the order it was sent; the table is left empty.
    @inlinable package mutating func drain() -> [Entry] {
        let drained = waiting.sorted { $0.key < $1.key }.map(\.value)
        waiting.removeAll()
        return drained
    }
}
