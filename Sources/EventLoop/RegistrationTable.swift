/// A registered descriptor as epoll knows it: the token in `epoll_data` names a slot and
/// its generation, so an event fetched for a descriptor that was deregistered (and whose
/// slot was reused) in the same wakeup finds a stale generation and is dropped.
package struct Registration: Hashable, Sendable {
    let slot: UInt32
    let generation: UInt32

    var token: UInt64 { UInt64(generation) << 32 | UInt64(slot) }
}

/// The loop's descriptor table: slots reused through a free list.
struct RegistrationTable {
    struct Slot {
        var fd: Int32 = -1
        var interest: Interest = []
        var inEpoll = false
        var generation: UInt32 = 0
        var handler: (any ReadinessHandler)?
    }

    private var slots: [Slot] = []
    private var free: [UInt32] = []

    mutating func insert(fd: Int32, handler: any ReadinessHandler) -> Registration {
        let index = free.popLast() ?? {
            slots.append(Slot())
            return UInt32(slots.count - 1)
        }()
        slots[Int(index)].fd = fd
        slots[Int(index)].interest = []
        slots[Int(index)].inEpoll = false
        slots[Int(index)].handler = handler
        return Registration(slot: index, generation: slots[Int(index)].generation)
    }

    func slot(_ registration: Registration) -> Slot? {
        guard Int(registration.slot) < slots.count else { return nil }
        let slot = slots[Int(registration.slot)]
        return slot.generation == registration.generation && slot.handler != nil ? slot : nil
    }

    mutating func update(_ registration: Registration, interest: Interest, inEpoll: Bool) {
        guard slot(registration) != nil else { return }
        slots[Int(registration.slot)].interest = interest
        slots[Int(registration.slot)].inEpoll = inEpoll
    }

    mutating func remove(_ registration: Registration) {
        guard slot(registration) != nil else { return }
        slots[Int(registration.slot)] = Slot(generation: registration.generation &+ 1)
        free.append(registration.slot)
    }

    func handler(for token: UInt64) -> (any ReadinessHandler)? {
        slot(Registration(slot: UInt32(truncatingIfNeeded: token), generation: UInt32(truncatingIfNeeded: token >> 32)))?.handler
    }
}
