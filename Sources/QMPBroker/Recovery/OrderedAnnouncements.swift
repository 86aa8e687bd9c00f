/// A device's events in the order its machine produced them. A forwarded error is
/// announced once QEMU has answered its injection (so that `action` says what happened),
/// and whatever the machine said after it (host recovery, a link reset) waits behind it,
/// so that a client never hears of a recovery before the error.
struct OrderedAnnouncements {
    typealias Emit = () -> Void

    private enum Slot {
        case waiting
        case ready(Emit)
    }

    private var slots: [Slot] = []
    /// The ticket of `slots[0]`.
    private var head = 0

    /// An event to send now, or after the ones still waiting; returns what can go now.
    mutating func append(_ emit: @escaping Emit) -> [Emit] {
        if slots.isEmpty { return [emit] }
        slots.append(.ready(emit))
        return []
    }

    /// Keeps a place for an event whose content is not known yet.
    mutating func reserve() -> Int {
        slots.append(.waiting)
        return head + slots.count - 1
    }

    /// Fills a reserved place; returns what can go now, in order.
    mutating func fill(_ ticket: Int, _ emit: @escaping Emit) -> [Emit] {
        let index = ticket - head
        guard slots.indices.contains(index) else { return [emit] }
        slots[index] = .ready(emit)
        var now: [Emit] = []
        while case .ready(let next)? = slots.first {
            now.append(next)
            slots.removeFirst()
            head += 1
        }
        return now
    }
}
