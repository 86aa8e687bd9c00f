import BrokerTesting
import Dispatch
import Glibc
import QMPBroker
import QMPWire
import Synchronization
import Testing

/// 50 clients on one VM, 10 of which never read: the 40 readers get every event and
/// their commands answered; the 10 are cut off once their queue of unread events
/// overflows, and nothing else notices.
@Suite(.serialized) struct StuckClientFaultTests {
    final class Counts: Sendable {
        let complete = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        /// Events each reader has seen so far.
        let progress = Mutex<[Int]>(Array(repeating: 0, count: 40))
    }

    @Test func tenOfFiftyClientsNeverRead() throws {
        let directory = TemporaryDirectory.forTest()
        let peer = try ScriptedVMMGroup.shared.listen(at: directory.file("scripted.qmp"))
        defer { peer.close() }
        let broker = try BrokerInstance(upstream: directory.file("scripted.qmp"), in: directory) {
            $0.traceLogPath = nil
            $0.clientQueueBytes = 256 << 10
        }
        let stuck = try (0..<10).map { _ in try broker.client() }
        // 2000 events of about 1 KiB: far more than a stuck client's queue and socket
        // buffers hold. The readers are never allowed to fall more than 100 events behind,
        // so that a reader slowed by a loaded machine is not mistaken for a stuck one.
        let total = 2000
        let padding = String(repeating: "x", count: 1000)
        let counts = Counts()
        let group = DispatchGroup()
        let ready = DispatchSemaphore(value: 0)
        let socket = broker.socketPath
        for number in 0..<40 {
            runOnOwnThread(group) {
                do {
                    let client = try QMPClient(path: socket)
                    try client.negotiate()
                    ready.signal()
                    var seen = 0
                    var stray: JSON?
                    while seen < total {
                        guard let event = try client.nextEvent("BURST", timeout: 30) else { break }
                        if event["data"]?["n"]?.integer == Int64(seen + 1) { seen += 1 } else { stray = event; break }
                        let count = seen
                        counts.progress.withLock { $0[number] = count }
                    }
                    let reply = try client.execute("query-status", id: .integer(Int64(number)))
                    if seen == total && reply["id"]?.integer == Int64(number) {
                        counts.complete.add(1, ordering: .relaxed)
                    } else {
                        counts.failures.withLock { $0.append("client \(number): \(seen) events, then \(String(describing: stray)), reply \(reply), other events \(client.events.count)") }
                    }
                } catch {
                    counts.failures.withLock { $0.append("client \(number): \(error)") }
                    counts.progress.withLock { $0[number] = .max }  // do not hold the burst back
                    ready.signal()
                }
            }
        }
        for _ in 0..<40 { ready.wait() }
        let paced = Deadline(after: 120)
        for number in 1...total {
            while counts.progress.withLock({ $0.min()! }) < number - 100 && !paced.passed { usleep(1_000) }
            peer.emit("BURST", data: #"{"n": \#(number), "pad": "\#(padding)"}"#)
        }
        #expect(group.wait(timeout: .now() + 120) == .success)
        #expect(counts.complete.load(ordering: .relaxed) == 40, "\(counts.failures.withLock { $0.prefix(3) })")
        // The stuck ones were cut off: only the 40 readers (gone now) and this one were left.
        let observer = try broker.client()
        let clients = try observer.execute("query-broker")["return"]?["vms"]?[0]?["clients"]?.integer
        #expect(clients == 1)
        for client in stuck { #expect(client.waitForClose(timeout: 10)) }
    }
}
