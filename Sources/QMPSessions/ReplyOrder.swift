/// Things that must leave in the order their places were taken, whenever each becomes
/// known. One client's in-band replies (`ReplyOrder`): QEMU answers in-band commands
/// strictly in order, so a local reply must not overtake an earlier forwarded one
/// (out-of-band replies take no place). Also a device's events, where a forwarded error
/// is announced only once QEMU has answered its injection.
package struct OrderedSlots<Element> {
    package init() {}

    package typealias Slot = UInt64

    private var nextSlot: Slot = 0
    private var nextToSend: Slot = 0
    private var filled: [Slot: Element] = [:]

    /// A place in line for something not yet known.
    package mutating func reserve() -> Slot {
        defer { nextSlot += 1 }
        return nextSlot
    }

    /// Fills a place; returns everything now at the head of the line, in order.
    package mutating func fill(_ slot: Slot, with element: Element) -> [Element] {
        if slot == nextToSend && filled.isEmpty {
            nextToSend += 1
            return [element]
        }
        filled[slot] = element
        var ready: [Element] = []
        while let next = filled.removeValue(forKey: nextToSend) {
            ready.append(next)
            nextToSend += 1
        }
        return ready
    }

    /// Something known now: it goes at once, or behind what is still awaited.
    package mutating func append(_ element: Element) -> [Element] {
        fill(reserve(), with: element)
    }
}

extension OrderedSlots: Sendable where Element: Sendable {}

/// One client's in-band replies, in the order its commands arrived.
package typealias ReplyOrder = OrderedSlots<[UInt8]>
