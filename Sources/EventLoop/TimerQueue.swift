/// The loop's timers: a binary min-heap of deadlines, with cancellation by id. Pure data,
/// so its ordering is tested without a thread. Deadlines are monotonic nanoseconds.
package struct TimerQueue<Payload> {
    package struct ID: Hashable, Sendable {
        let value: UInt64
    }

    private struct Entry {
        let deadline: UInt64
        let id: UInt64
    }

    private var heap: [Entry] = []
    /// The payload of every live timer; a cancelled one is gone from here and skipped
    /// when its heap entry surfaces (cheaper than removing from the middle of the heap).
    private var payloads: [UInt64: Payload] = [:]
    private var nextID: UInt64 = 1

    package init() {}

    package var count: Int { payloads.count }

    package mutating func schedule(at deadline: UInt64, _ payload: Payload) -> ID {
        let id = nextID
        nextID += 1
        payloads[id] = payload
        heap.append(Entry(deadline: deadline, id: id))
        siftUp(heap.count - 1)
        return ID(value: id)
    }

    /// Returns whether the timer was still pending.
    @discardableResult
    package mutating func cancel(_ id: ID) -> Bool {
        payloads.removeValue(forKey: id.value) != nil
    }

    /// The earliest live deadline.
    package mutating func nextDeadline() -> UInt64? {
        dropCancelledTop()
        return heap.first?.deadline
    }

    /// Removes and returns the payload of the earliest timer due at `now`, if any (one at a
    /// time, so that a payload that schedules or cancels timers sees a consistent queue).
    package mutating func popDue(now: UInt64) -> Payload? {
        dropCancelledTop()
        guard let top = heap.first, top.deadline <= now else { return nil }
        removeTop()
        return payloads.removeValue(forKey: top.id)
    }

    private mutating func dropCancelledTop() {
        while let top = heap.first, payloads[top.id] == nil { removeTop() }
    }

    private mutating func removeTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.id < b.id
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            let right = left + 1
            let smaller = right < heap.count && precedes(heap[right], heap[left]) ? right : left
            guard precedes(heap[smaller], heap[parent]) else { return }
            heap.swapAt(smaller, parent)
            parent = smaller
        }
    }
}
