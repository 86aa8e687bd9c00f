import BrokerTesting
import Dispatch
import EventLoop
import Glibc
import Logging
import QMPBroker
import QMPWire
import VFIOWatch

// `make bench`: every figure is printed next to a baseline measured in the same run.

/// Median and 99th percentile of samples in microseconds.
func summary(_ samples: [Double]) -> (median: Double, p99: Double) {
    let sorted = samples.sorted()
    return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))])
}

func microseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = Deadline.now()
    try body()
    return (Deadline.now() - start) * 1e6
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}

func format(_ value: Double) -> String { String(Int(value.rounded())) }
func format2(_ value: Double) -> String { String(Double(Int(value * 100)) / 100) }


func waitForFile(_ path: String) {
    var info = stat()
    let deadline = Deadline(after: 20)
    while stat(path, &info) != 0 && !deadline.passed { usleep(2000) }
}

var logger = Logger(label: "bench")
logger.logLevel = .error
let temporary = try TemporaryDirectory(prefix: "qmpb-bench")
let directory = temporary.path

// MARK: forwarded command round trip: QEMU direct vs socat relay vs broker

let qemuSocket = "\(directory)/qemu.qmp"
let secondMonitor = "\(directory)/qemu-direct.qmp"
let qtestSocket = "\(directory)/qtest.sock"
var qemuCommandLine = QEMUCommandLine(qmpSocket: qemuSocket, qtestSocket: qtestSocket)
// A second monitor: QEMU serves one client per monitor, and every path is measured
// against the same QEMU, interleaved, so drift on a shared machine hits all alike.
qemuCommandLine.extra += ["-qtest-log", "none", "-qmp", "unix:\(secondMonitor),server=on,wait=off"]
let qemu = try ChildProcess(qemuCommandLine.arguments, outputPath: "\(directory)/qemu.log")
waitForFile(qemuSocket)
waitForFile(secondMonitor)

/// `count` sequential query-status round trips on a negotiated client.
func roundTrips(_ client: QMPClient, count: Int) throws -> [Double] {
    try (0..<count).map { _ in try microseconds { _ = try client.execute("query-status") } }
}

func negotiated(_ path: String) throws -> QMPClient {
    let client = try QMPClient(path: path)
    try client.negotiate()
    for _ in 0..<200 { _ = try client.execute("query-status") }  // warm up
    return client
}

let rounds = Int(getenv("BENCH_ROUNDS").map { String(cString: $0) } ?? "") ?? 10_000
let relaySocket = "\(directory)/relay.qmp"
let relay = try ChildProcess(["socat", "UNIX-LISTEN:\(relaySocket),fork", "UNIX-CONNECT:\(secondMonitor)"])
waitForFile(relaySocket)
// A bare relay on the broker's own transport (no QMP at all): what the loop itself costs.
let transportRelaySocket = "\(directory)/transport-relay.qmp"
let relayLoop = EventLoop(name: "bench.relay")
let relayPeers = UncheckedBox(RelayPeers())
let relayListener = UncheckedBox(ListenerSlot())
relayLoop.runAndWait {
    relayListener.value.listener = try! UnixSocketListener(path: transportRelaySocket, mode: 0o600, loop: relayLoop) { fd in
        let downstream = UnixStreamConnection(adopting: fd, loop: relayLoop, maxQueuedBytes: 1 << 24)
        guard let upstream = try? UnixStreamConnection.connect(toPath: secondMonitor, loop: relayLoop, maxQueuedBytes: 1 << 24) else {
            return downstream.close()
        }
        downstream.onRead = { bytes, _ in upstream.send(Array(bytes)) }
        upstream.onRead = { bytes, _ in downstream.send(Array(bytes)) }
        downstream.onClose = { _ in upstream.close() }
        upstream.onClose = { _ in downstream.close() }
        relayPeers.value.connections += [downstream, upstream]
        downstream.start()
        upstream.start()
    }
}
var vm = VMConfiguration(name: "bench", upstreamPath: qemuSocket, socketPath: "\(directory)/bench.qmp")
vm.recovery.pollMilliseconds = 0
vm.recovery.allowInject = true
let broker = try Broker(vms: [vm], logger: logger)
try broker.start()

var samples: [String: [Double]] = [:]
let paths = [("QEMU direct", secondMonitor), ("socat relay", relaySocket),
             ("bare loop relay (no QMP)", transportRelaySocket), ("qmp-broker", vm.socketPath)]
for _ in 0..<5 {
    for (name, path) in paths {
        // One client at a time on QEMU's second monitor: connect, measure, leave.
        let client = try negotiated(path)
        samples[name, default: []] += try roundTrips(client, count: rounds / 5)
        if name != "qmp-broker" { usleep(50_000) }
    }
}
relay.kill(signal: SIGKILL)
relayLoop.runAndWait {
    relayListener.value.listener?.close()
    relayPeers.value.connections.forEach { $0.close() }
}
print("query-status round trip, \(rounds) sequential per path, interleaved (µs, median / p99):")
for (name, _) in paths {
    let result = summary(samples[name]!)
    print("  \(name.padding(30))\(format(result.median)) / \(format(result.p99))")
}
let (d, s, b) = (summary(samples["QEMU direct"]!), summary(samples["socat relay"]!), summary(samples["qmp-broker"]!))
print("  broker / direct = \(format2(b.median / d.median))x; broker - socat = \(format(b.median - s.median)) µs (goal ≤ 45)")

// MARK: one event to 100 clients

let fanoutClients = 100
let events = 2000
let readers = try (0..<fanoutClients).map { _ -> QMPClient in
    let client = try QMPClient(path: vm.socketPath)
    try client.negotiate()
    return client
}
let delivered = DispatchGroup()
let brokerVM = broker.vms[0]
for client in readers {
    delivered.enter()
    let box = UncheckedBox(client)
    startThread {
        var seen = 0
        while seen < events, let message = try? box.value.readMessage(timeout: 30) {
            if message["event"]?.string == "BENCH" { seen += 1 }
        }
        delivered.leave()
    }
}
let fanoutSeconds = microseconds {
    for _ in 0..<events { brokerVM.emitFromOutside("BENCH") }
    delivered.wait()
} / 1e6
// Baseline: the same bytes written by a bare loop to 100 socket pairs, read on the same threads.
let baselineSeconds = try socketPairFanout(clients: fanoutClients, events: events)
let deliveries = Double(fanoutClients * events)
print("one event to \(fanoutClients) clients, \(events) events (deliveries/s):")
print("  bare socketpair loop  \(format(deliveries / baselineSeconds))")
print("  qmp-broker            \(format(deliveries / fanoutSeconds)) (goal ≥ 200000; \(format2(baselineSeconds / fanoutSeconds))x of bare)")
readers.forEach { _ = $0 }

// MARK: eventfd → VFIO_PCI_ERROR at a client; fatal eventfd (policy stop) → STOP from QEMU

let watcher = try QMPClient(path: vm.socketPath)
try watcher.negotiate()
_ = try watcher.execute("vfio-device-add", arguments: .object(["id": .string("dev0"), "host": .string("0000:3b:00.0"),
                                                                "policy": .string("report")]))
let eventFD = try EventFD.makeEventFD()
_ = try watcher.execute("vfio-eventfd-add", arguments: .object(["device": .string("dev0"), "severity": .string("non-fatal")]),
                        fds: [dup(eventFD)])
var latencies: [Double] = []
for _ in 0..<1000 {
    latencies.append(try microseconds {
        try EventFD.signal(eventFD)
        guard try watcher.nextEvent("VFIO_PCI_ERROR", timeout: 5) != nil else { throw QMPClient.Failure("lost event") }
    })
}
let signalRoundTrip = try (0..<1000).map { _ in try microseconds { try EventFD.signal(eventFD); _ = try EventFD.drain(eventFD) } }
let e = summary(latencies)
print("eventfd write → VFIO_PCI_ERROR at a client, 1000 signals (µs, median / p99): \(format(e.median)) / \(format(e.p99))")
print("  baseline eventfd write+read in-process: \(format2(summary(signalRoundTrip).median)) µs")

_ = try watcher.execute("vfio-device-set-policy", arguments: .object(["device": .string("dev0"), "policy": .string("stop")]))
let fatalFD = try EventFD.makeEventFD()
_ = try watcher.execute("vfio-eventfd-add", arguments: .object(["device": .string("dev0"), "severity": .string("fatal")]),
                        fds: [dup(fatalFD)])
var stops: [Double] = []
for _ in 0..<200 {
    _ = try watcher.execute("cont")
    _ = try watcher.nextEvent("RESUME", timeout: 5)
    _ = try watcher.execute("vfio-link-error-clear", arguments: .object(["device": .string("dev0")]))
    stops.append(try microseconds {
        try EventFD.signal(fatalFD)
        guard try watcher.nextEvent("STOP", timeout: 5) != nil else { throw QMPClient.Failure("no STOP") }
    })
}
let st = summary(stops)
print("fatal eventfd → STOP event from QEMU at a client, 200 trials (µs, median / p99): \(format(st.median)) / \(format(st.p99))")
print("  baseline: QEMU's own stop round trip \(format(d.median)) µs (query-status direct, above)")

// MARK: guest Secondary Bus Reset (qtest) on a flagged link → STOP

let qtest = try QTestConnection(path: qtestSocket)
try qtest.enableECAM()
_ = try watcher.execute("vfio-device-set-policy", arguments: .object(["device": .string("dev0"), "policy": .string("forward")]))
_ = try watcher.execute("cont")
_ = try watcher.nextEvent("RESUME", timeout: 5)
try watcher.waitForLinkResetWatch()
var sbrStops: [Double] = []
var detectionToStop: [Double] = []
let qtestRoundTrip = try (0..<200).map { _ in try microseconds { _ = try qtest.command("inb 0x80") } }
for _ in 0..<200 {
    // Resuming a VM stopped for the guest's link reset clears the flag: flag it each time.
    try EventFD.signal(fatalFD)
    _ = try watcher.nextEvent("VFIO_PCI_ERROR", timeout: 5)
    var reset: JSON?
    var stopped: JSON?
    sbrStops.append(try microseconds {
        try qtest.ecamWrite(bus: 0, slot: 0x1C, function: 0, offset: 0x3E, value: 0x40, width: 2)
        reset = try watcher.nextEvent("VFIO_LINK_RESET", timeout: 5)
        stopped = try watcher.nextEvent("STOP", timeout: 5)
        guard stopped != nil else { throw QMPClient.Failure("no STOP after SBR") }
    })
    detectionToStop.append(Double((stopped?.eventMicroseconds ?? 0) - (reset?.eventMicroseconds ?? 0)))
    try qtest.ecamWrite(bus: 0, slot: 0x1C, function: 0, offset: 0x3E, value: 0, width: 2)
    _ = try watcher.execute("cont")
    _ = try watcher.nextEvent("RESUME", timeout: 5)
}
let sbr = summary(sbrStops)
let detection = summary(detectionToStop)
print("guest SBR (qtest write) → STOP event from QEMU at a client, 200 trials (µs, median / p99): "
      + "\(format(sbr.median)) / \(format(sbr.p99))")
print("  of which broker's VFIO_LINK_RESET → QEMU's STOP (event timestamps): \(format(detection.median)) / \(format(detection.p99))")
print("  baseline: one qtest round trip \(format(summary(qtestRoundTrip).median)) µs")

broker.stop()
qemu.kill(signal: SIGKILL)

// MARK: memory: 1000 VMs in one process

func residentKiB() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmRSS:") { return Int(text.split(separator: " ")[1]) ?? 0 }
    }
    return 0
}
let before = residentKiB()
let many = try Broker(vms: (0..<1000).map { index in
    var config = VMConfiguration(name: "vm\(index)", upstreamPath: "\(directory)/absent-\(index).qmp",
                                 socketPath: "\(directory)/vm\(index).qmp")
    config.recovery.pollMilliseconds = 0
    return config
}, logger: logger)
try many.start()
usleep(500_000)
let after = residentKiB()
print("1000 VMs in one process: RSS \(after / 1024) MiB (\((after - before) / 1024) MiB for the VMs; goal < 256 MiB)")
many.stop()

final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

func socketPairFanout(clients: Int, events: Int) throws -> Double {
    let line = Array(#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BENCH"}"#.utf8) + [13, 10]
    var pairs: [(Int32, Int32)] = []
    for _ in 0..<clients {
        var fds: [Int32] = [0, 0]
        socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        pairs.append((fds[0], fds[1]))
    }
    let group = DispatchGroup()
    for pair in pairs {
        group.enter()
        let fd = pair.1
        startThread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            var remaining = events * line.count
            while remaining > 0 {
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { break }
                remaining -= count
            }
            group.leave()
        }
    }
    let seconds = microseconds {
        for _ in 0..<events {
            for pair in pairs { _ = line.withUnsafeBytes { write(pair.0, $0.baseAddress, $0.count) } }
        }
        group.wait()
    } / 1e6
    for pair in pairs { close(pair.0); close(pair.1) }
    return seconds
}

/// A real thread per reader: 100 blocking readers would exhaust Dispatch's pool.
func startThread(_ body: @escaping @Sendable () -> Void) {
    let box = Unmanaged.passRetained(UncheckedBox(body))
    var thread = pthread_t()
    pthread_create(&thread, nil, { raw in
        let body = Unmanaged<UncheckedBox<@Sendable () -> Void>>.fromOpaque(raw!).takeRetainedValue()
        body.value()
        return nil
    }, box.toOpaque())
    pthread_detach(thread)
}

final class RelayPeers {
    var connections: [UnixStreamConnection] = []
}

final class ListenerSlot {
    var listener: UnixSocketListener?
}
