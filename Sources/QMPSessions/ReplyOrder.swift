/// Keeps one client's in-band replies in the order its commands arrived, whoever
/// answers them: the VMM (forwarded) or the broker (local commands, parse errors).
/// QEMU answers in-band commands strictly in order; a local reply must not overtake
/// an earlier forwarded one. Out-of-band replies do not take a slot.
public struct ReplyOrder: Sendable {
    public init() {}

    public typealias Slot = UInt64

    private var nextSlot: Slot = 0
    private var nextToSend: Slot = 0
    private var filled: [Slot: [UInt8]] = [:]

    /// A place in line for a reply not yet known.
    public mutating func reserve() -> Slot {
        defer { nextSlot += 1 }
        return nextSlot
    }

    /// Fills a slot; returns every reply that is now at the head of the line, in order.
    public mutating func fill(_ slot: Slot, with bytes: [UInt8]) -> [[UInt8]] {
        if slot == nextToSend && filled.isEmpty {
            nextToSend += 1
            return [bytes]
        }
        filled[slot] = bytes
        var ready: [[UInt8]] = []
        while let next = filled.removeValue(forKey: nextToSend) {
            ready.append(next)
            nextToSend += 1
        }
        return ready
    }
}
