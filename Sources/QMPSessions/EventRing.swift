/// Every event a VM's clients are sent, numbered, with the last `capacity` kept so that a
/// client that was away can ask for what it missed (`query-broker-events`).
///
/// The number rides in the event itself as a top-level `broker-seq` member, spliced into
/// the bytes once; the same bytes go to every client and into the ring. QEMU clients
/// ignore members they do not know: `qemu.qmp` dispatches on `'event' in msg`, and
/// libvirt's `qemuMonitorJSONIOProcessEvent` reads `event`, `data` and `timestamp` by name.
package struct EventRing: Sendable {
    let capacity: Int
    /// The number the next event gets; numbers start at 1 per VM and broker process.
    package private(set) var nextSequence: Int64 = 1
    private var events: [[UInt8]] = []
    /// Index in `events` of the oldest kept event (a circular buffer once full).
    private var oldest = 0

    package init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Numbers an event line (`{…}` with optional line end) and keeps it; returns the bytes to send.
    package mutating func record(_ line: [UInt8]) -> [UInt8] {
        let numbered = Self.splice(sequence: nextSequence, into: line)
        nextSequence += 1
        if events.count < capacity {
            events.append(numbered)
        } else {
            events[oldest] = numbered
            oldest = (oldest + 1) % capacity
        }
        return numbered
    }

    /// The number of the oldest event still kept (nextSequence when none is).
    var firstKept: Int64 { nextSequence - Int64(events.count) }

    /// The kept events numbered above `sequence`, oldest first, and how many such events
    /// are no longer kept (the client was away for longer than the ring covers).
    package func events(after sequence: Int64) -> (events: [[UInt8]], missed: Int64) {
        let from = max(sequence + 1, firstKept)
        let missed = max(0, firstKept - (sequence + 1))
        guard from < nextSequence else { return ([], missed) }
        let skip = Int(from - firstKept)
        var result: [[UInt8]] = []
        result.reserveCapacity(events.count - skip)
        for index in skip..<events.count { result.append(events[(oldest + index) % events.count]) }
        return (result, missed)
    }

    /// `{…, "broker-seq": N}` followed by the original line end. The line is QEMU's or the
    /// broker's own writer output, so its last `}` closes the top-level object.
    static func splice(sequence: Int64, into line: [UInt8]) -> [UInt8] {
        guard let close = line.lastIndex(of: UInt8(ascii: "}")) else { return line }
        var result = Array(line[..<close])
        result += Array(", \"broker-seq\": \(sequence)".utf8)
        result += line[close...]
        return result
    }
}
