import Testing
@testable import QMPBroker

/// `#expect` cannot wrap a mutating call, so the tests append and consume through these.
private func append(_ bytes: [UInt8], fds: [Int32] = [], to queue: inout OutputQueue) -> Bool {
    queue.append(bytes[...], fds: fds)
}

private func headBytes(_ queue: OutputQueue) -> [UInt8] {
    queue.sendableChunks(maxChunks: 1).first.map { Array($0.bytes) } ?? []
}

@Suite("Transport: OutputQueue bookkeeping")
struct TransportOutputQueueTests {
    @Test func acceptsUpToTheBoundAndRejectsBeyondIt() {
        var queue = OutputQueue(limit: 10)
        let first = append([1, 2, 3, 4, 5, 6], to: &queue)
        let upToBound = append([7, 8, 9, 10], to: &queue)
        let beyond = append([11], to: &queue)
        #expect(first)
        #expect(upToBound, "exactly at the bound is allowed")
        #expect(!beyond)
        #expect(queue.byteCount == 10)
        #expect(queue.chunkCount == 2, "a rejected chunk leaves the queue as it was")
        #expect(!queue.hasRoom(for: 1))
    }

    @Test func descriptorsAreReleasedWithTheFirstByteOfTheirChunk() {
        var queue = OutputQueue(limit: 100)
        _ = append([1, 2, 3], fds: [7], to: &queue)
        _ = append([4, 5, 6, 7], fds: [8, 9], to: &queue)
        _ = append([8, 9], to: &queue)

        let afterOneByte = queue.consume(1)
        #expect(afterOneByte == [7])
        #expect(queue.byteCount == 8)
        #expect(headBytes(queue) == [2, 3])
        #expect(queue.sendableChunks(maxChunks: 1).first?.fds == [], "sent descriptors are not sent twice")

        let intoSecondChunk = queue.consume(3)
        #expect(intoSecondChunk == [8, 9], "the next chunk's first byte carries its descriptors")
        #expect(headBytes(queue) == [5, 6, 7])

        let rest = queue.consume(5)
        #expect(rest == [])
        #expect(queue.isEmpty)
        #expect(queue.byteCount == 0)
    }

    @Test func oneSendStopsBeforeTheNextChunkWithDescriptors() {
        var queue = OutputQueue(limit: 100)
        _ = append([1], to: &queue)
        _ = append([2], to: &queue)
        _ = append([3], fds: [5], to: &queue)
        _ = append([4], to: &queue)
        #expect(queue.sendableChunks(maxChunks: 64).map { Array($0.bytes) } == [[1], [2]])
        #expect(queue.sendableChunks(maxChunks: 1).map { Array($0.bytes) } == [[1]])

        let plain = queue.consume(2)
        #expect(plain == [])
        // A chunk with descriptors may lead a send, followed by plain chunks.
        let next = queue.sendableChunks(maxChunks: 64)
        #expect(next.map { Array($0.bytes) } == [[3], [4]])
        #expect(next.first?.fds == [5])
    }

    @Test func queuedBytesShareTheCallersArrayInsteadOfCopying() {
        let event = patternBytes(count: 4096)
        var first = OutputQueue(limit: 1 << 20)
        var second = OutputQueue(limit: 1 << 20)
        _ = first.append(event[...])
        _ = second.append(event[...])
        let original = event.withUnsafeBytes { $0.baseAddress! }
        #expect(first.sendableChunks(maxChunks: 1).first?.bytes.withUnsafeBytes { $0.baseAddress } == original)
        #expect(second.sendableChunks(maxChunks: 1).first?.bytes.withUnsafeBytes { $0.baseAddress } == original)

        // A partial write moves the start of the slice; still no copy.
        _ = first.consume(100)
        #expect(first.sendableChunks(maxChunks: 1).first?.bytes.withUnsafeBytes { $0.baseAddress } == original + 100)
        #expect(headBytes(first) == Array(event[100...]))
    }

    @Test func removeAllHandsBackOnlyUnsentDescriptors() {
        var queue = OutputQueue(limit: 100)
        _ = append([1, 2], fds: [3], to: &queue)
        _ = append([4], fds: [5, 6], to: &queue)
        let sent = queue.consume(1)
        let unsent = queue.removeAll()
        #expect(sent == [3])
        #expect(unsent == [5, 6])
        #expect(queue.isEmpty)
        #expect(queue.byteCount == 0)
        let reused = append([9], to: &queue)
        #expect(reused, "usable again after being emptied")
    }

    @Test func orderSurvivesCompactionOverManyChunks() {
        var queue = OutputQueue(limit: 1 << 20)
        for value in 0..<1000 {
            _ = append([UInt8(truncatingIfNeeded: value), 0xFF], to: &queue)
        }
        // Consume one byte at a time, so partial and whole-chunk consumption alternate
        // while the consumed prefix is compacted away.
        var stream: [UInt8] = []
        while !queue.isEmpty {
            stream.append(headBytes(queue)[0])
            _ = queue.consume(1)
        }
        let expected: [UInt8] = (0..<1000).flatMap { value -> [UInt8] in [UInt8(truncatingIfNeeded: value), 0xFF] }
        #expect(stream == expected)
        #expect(queue.byteCount == 0)
    }
}
