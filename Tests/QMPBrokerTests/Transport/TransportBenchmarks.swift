import Dispatch
import Glibc
import Testing
@testable import QMPBroker

/// Throughput and latency of the transport, printed rather than asserted (numbers depend on
/// the machine). Opt in with QMP_BROKER_BENCH=1, ideally in a release build:
/// `swift test -c release -Xswiftc -enable-testing --filter TransportBenchmarks`.
@Suite("Transport: benchmarks", .enabled(if: getenv("QMP_BROKER_BENCH") != nil), .serialized)
struct TransportBenchmarks {
    /// One event written to 100 clients, as the broker's fan-out does, event after event.
    @Test func eventFanOutToAHundredClients() async throws {
        let brokerQueue = DispatchQueue(label: "bench.broker")
        let server = try SocketTestServer(serverQueue: brokerQueue, maxQueuedBytes: 8 << 20)
        defer { server.shutDown() }
        let clientQueue = DispatchQueue(label: "bench.clients")
        let clientCount = 100
        let eventCount = 2_000
        let event = Array(#"{"timestamp": {"seconds": 1732530000, "microseconds": 123456}, "event": "BLOCK_JOB_COMPLETED", "data": {"device": "drive0", "len": 1073741824, "offset": 1073741824, "speed": 0, "type": "mirror"}}"#.utf8) + [13, 10]
        let expectedBytes = clientCount * eventCount * event.count

        var serverSides: [UnixStreamConnection] = []
        let received = ByteCounter(queue: clientQueue)
        for _ in 0..<clientCount {
            let (client, serverSide) = try await server.connectPair(clientQueue: clientQueue)
            await runOnQueue(clientQueue) { client.connection.onRead = { bytes, _ in received.add(bytes.count) } }
            serverSides.append(serverSide.connection)
        }
        let connections = serverSides
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<eventCount {
            brokerQueue.async {
                for connection in connections { connection.send(event) }
            }
        }
        let sendingDone = await runOnQueue(brokerQueue) { clock.now }
        #expect(await received.wait(for: expectedBytes))
        let elapsed = clock.now - start
        let deliveries = Double(clientCount * eventCount)
        print("fan-out: \(Int(deliveries)) deliveries of \(event.count) B in \(elapsed); "
            + "\(Int(deliveries / seconds(elapsed))) deliveries/s end to end (clients reading on the same 2 cores), "
            + "\(Int(deliveries / seconds(sendingDone - start))) deliveries/s on the broker queue")

        // The broker's own cost: clients held (not reading, so not competing for the CPU)
        // while a burst that fits in their socket buffers is written.
        let burst = 400
        clientQueue.suspend()
        let burstTime = await runOnQueue(brokerQueue) { () -> Duration in
            let burstStart = clock.now
            for _ in 0..<burst {
                for connection in connections { connection.send(event) }
            }
            return clock.now - burstStart
        }
        clientQueue.resume()
        #expect(await received.wait(for: expectedBytes + clientCount * burst * event.count))
        let queued = await runOnQueue(brokerQueue) { connections.reduce(0) { $0 + $1.queuedBytes } }
        print("fan-out, broker side only: \(clientCount * burst) sends in \(burstTime), "
            + "\(Int(Double(clientCount * burst) / seconds(burstTime))) deliveries/s (\(queued) B left queued)")
        for connection in connections { await runOnQueue(brokerQueue) { connection.close() } }
    }

    /// Round trips client → broker → upstream echo → broker → client, against client → echo
    /// directly: the difference is what forwarding through the transport adds.
    @Test func forwardingLatency() async throws {
        let upstreamQueue = DispatchQueue(label: "bench.upstream")
        let brokerQueue = DispatchQueue(label: "bench.broker")
        let clientQueue = DispatchQueue(label: "bench.client")
        let upstream = try SocketTestServer(serverQueue: upstreamQueue)
        defer { upstream.shutDown() }
        let message = Array(#"{"execute": "query-status", "id": 1234567}"#.utf8) + [10]

        // Upstream echoes every complete message.
        let (brokerToUpstream, upstreamSide) = try await upstream.connectPair(clientQueue: brokerQueue)
        let (directClient, directUpstreamSide) = try await upstream.connectPair(clientQueue: clientQueue)
        for side in [upstreamSide, directUpstreamSide] {
            await runOnQueue(upstreamQueue) { Echo.install(on: side.connection, messageSize: message.count) }
        }

        // The broker forwards bytes both ways between its client and upstream.
        let broker = try SocketTestServer(serverQueue: brokerQueue)
        defer { broker.shutDown() }
        let (proxiedClient, brokerClientSide) = try await broker.connectPair(clientQueue: clientQueue)
        await runOnQueue(brokerQueue) {
            let client = brokerClientSide.connection
            let upstream = brokerToUpstream.connection
            client.onRead = { bytes, fds in upstream.send(Array(bytes), fds: fds) }
            upstream.onRead = { bytes, fds in client.send(Array(bytes), fds: fds) }
        }

        // Interleaved rounds, median per round: a 2-core machine shared with other work is noisy.
        let rounds = 9
        let roundTrips = 3_000
        var directMicros: [Double] = []
        var proxiedMicros: [Double] = []
        for _ in 0..<rounds {
            let direct = await PingPong.run(directClient.connection, message: message, count: roundTrips)
            let proxied = await PingPong.run(proxiedClient.connection, message: message, count: roundTrips)
            directMicros.append(seconds(direct) * 1e6 / Double(roundTrips))
            proxiedMicros.append(seconds(proxied) * 1e6 / Double(roundTrips))
        }
        let added = zip(proxiedMicros, directMicros).map { $0 - $1 }.sorted()
        print("latency: median round trip direct \(format(median(directMicros))) µs, through the broker "
            + "\(format(median(proxiedMicros))) µs; forwarding adds \(format(median(added))) µs per command "
            + "(rounds: \(added.map(format).joined(separator: ", ")))")
    }
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

private func median(_ values: [Double]) -> Double {
    values.sorted()[values.count / 2]
}

private func format(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}

/// Counts received bytes on `queue` and wakes a waiter at a target.
private final class ByteCounter: @unchecked Sendable {
    private var count = 0
    private let conditions: QueueConditions

    init(queue: DispatchQueue) {
        conditions = QueueConditions(queue: queue)
    }

    func add(_ bytes: Int) {
        count += bytes
        conditions.changed()
    }

    func wait(for total: Int) async -> Bool {
        await conditions.wait(timeout: 60) { [self] in count >= total }
    }
}

private enum Echo {
    static func install(on connection: UnixStreamConnection, messageSize: Int) {
        var pending: [UInt8] = []
        connection.onRead = { bytes, _ in
            pending.append(contentsOf: bytes)
            while pending.count >= messageSize {
                connection.send(Array(pending[..<messageSize]))
                pending.removeFirst(messageSize)
            }
        }
    }
}

/// Sends `message`, waits for it to come back whole, repeats; returns the total time.
private enum PingPong {
    static func run(_ connection: UnixStreamConnection, message: [UInt8], count: Int) async -> Duration {
        await withCheckedContinuation { continuation in
            connection.queue.async {
                let clock = ContinuousClock()
                let start = clock.now
                var remaining = count
                var received = 0
                connection.onRead = { bytes, _ in
                    received += bytes.count
                    guard received >= message.count else { return }
                    received -= message.count
                    remaining -= 1
                    if remaining == 0 {
                        connection.onRead = nil
                        continuation.resume(returning: clock.now - start)
                    } else {
                        connection.send(message)
                    }
                }
                connection.send(message)
            }
        }
    }
}
