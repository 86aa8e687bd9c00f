/// The bytes a connection has accepted but the kernel has not taken yet, bounded in bytes.
///
/// Pure bookkeeping, no system calls: the connection decides when to write, this decides
/// what is pending, in order, and which descriptors go with which byte.
///
/// Chunks keep the caller's arrays as slices, never copies: an event encoded once and
/// queued on a hundred slow clients is stored once (arrays are copy-on-write and nothing
/// here writes to them), and a partial write just moves the slice's start.
struct OutputQueue {
    struct Chunk {
        var bytes: ArraySlice<UInt8>
        /// Passed with the first byte of `bytes`; emptied once the kernel has them.
        var fds: [Int32]
    }

    /// The most unsent bytes the queue may hold.
    let limit: Int
    /// Unsent bytes.
    private(set) var byteCount = 0
    /// Pending chunks are `chunks[head...]`; consumed ones before `head` are dropped lazily
    /// so that consuming from the front is O(1).
    private var chunks: [Chunk] = []
    private var head = 0

    init(limit: Int) {
        self.limit = limit
    }

    var isEmpty: Bool { head == chunks.count }
    var chunkCount: Int { chunks.count - head }

    /// Whether `count` more bytes stay within the bound.
    func hasRoom(for count: Int) -> Bool { count <= limit - byteCount }

    /// Queues `bytes` behind everything already queued. Returns false, queueing nothing,
    /// when that would exceed the bound (unless `bounded` is false: output the peer asked
    /// for, which the connection limits by not reading). `bytes` must not be empty:
    /// descriptors need a byte to ride on.
    mutating func append(_ bytes: ArraySlice<UInt8>, fds: [Int32] = [], bounded: Bool = true) -> Bool {
        precondition(!bytes.isEmpty, "an empty chunk cannot carry descriptors or make progress")
        guard !bounded || hasRoom(for: bytes.count) else { return false }
        chunks.append(Chunk(bytes: bytes, fds: fds))
        byteCount += bytes.count
        return true
    }

    /// What one `sendmsg` may carry, oldest first: the head chunk and those after it, up to
    /// `maxChunks`, stopping before the next chunk with descriptors (they must start their
    /// own `sendmsg` so that they arrive with their own first byte).
    func sendableChunks(maxChunks: Int) -> ArraySlice<Chunk> {
        guard !isEmpty else { return [] }
        var end = head + 1
        while end < chunks.count && end - head < maxChunks && chunks[end].fds.isEmpty {
            end += 1
        }
        return chunks[head..<end]
    }

    /// Records that the kernel took `count` bytes from the front. Returns the descriptors
    /// that went with them: the kernel holds its own references now, so the caller closes these.
    mutating func consume(_ count: Int) -> [Int32] {
        precondition(count >= 0 && count <= byteCount, "consumed more than was queued")
        var remaining = count
        var sent: [Int32] = []
        while remaining > 0 {
            if !chunks[head].fds.isEmpty {
                sent += chunks[head].fds
                chunks[head].fds = []
            }
            let available = chunks[head].bytes.count
            if remaining < available {
                chunks[head].bytes = chunks[head].bytes.dropFirst(remaining)
                byteCount -= remaining
                remaining = 0
            } else {
                // Let go of the caller's array now, not at the next compaction.
                chunks[head] = Chunk(bytes: [], fds: [])
                head += 1
                byteCount -= available
                remaining -= available
            }
        }
        compact()
        return sent
    }

    /// Empties the queue, returning the descriptors that were never sent (the caller closes them).
    mutating func removeAll() -> [Int32] {
        var unsent: [Int32] = []
        for chunk in chunks[head...] { unsent += chunk.fds }
        chunks = []
        head = 0
        byteCount = 0
        return unsent
    }

    private mutating func compact() {
        if head == chunks.count {
            // Keep a small array for the next backlog; give back a big one.
            chunks.removeAll(keepingCapacity: chunks.capacity <= 64)
            head = 0
        } else if head >= 64 && head * 2 >= chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
    }
}
