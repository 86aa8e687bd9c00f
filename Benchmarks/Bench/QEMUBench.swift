import BrokerTesting
import Glibc
import Logging
import QMPBroker

/// One real QEMU with four QMP monitors (QEMU serves one client per monitor): the broker
/// fronts the first, a `socat` relay the second, the broker's bare transport relay the
/// third, and the fourth is asked directly, so the paths are measured against the same QEMU
/// at the same time.
final class QEMUBench {
    let qemu: ChildProcess
    let relay: ChildProcess
    let loopRelay: BareLoopRelay
    let broker: Broker
    let vm: VMConfiguration
    let directSocket: String
    let relaySocket: String
    let loopRelaySocket: String
    let qtestSocket: String

    init(directory: String, logger: Logger) throws {
        let brokerMonitor = "\(directory)/qemu.qmp"
        let relayMonitor = "\(directory)/qemu-relay.qmp"
        let loopRelayMonitor = "\(directory)/qemu-loop-relay.qmp"
        directSocket = "\(directory)/qemu-direct.qmp"
        qtestSocket = "\(directory)/qtest.sock"
        var commandLine = QEMUCommandLine(qmpSocket: brokerMonitor, qtestSocket: qtestSocket)
        commandLine.extra += ["-qtest-log", "none", "-qmp", "unix:\(relayMonitor),server=on,wait=off",
                              "-qmp", "unix:\(loopRelayMonitor),server=on,wait=off",
                              "-qmp", "unix:\(directSocket),server=on,wait=off"]
        qemu = try ChildProcess(commandLine.arguments, outputPath: "\(directory)/qemu.log")
        for path in [brokerMonitor, relayMonitor, loopRelayMonitor, directSocket] { try waitForSocket(path) }
        relaySocket = "\(directory)/relay.qmp"
        relay = try ChildProcess(["socat", "UNIX-LISTEN:\(relaySocket),fork", "UNIX-CONNECT:\(relayMonitor)"])
        try waitForSocket(relaySocket)
        loopRelaySocket = "\(directory)/loop-relay.qmp"
        loopRelay = try BareLoopRelay(path: loopRelaySocket, upstream: loopRelayMonitor)
        var vm = VMConfiguration(name: "bench", upstreamPath: brokerMonitor, socketPath: "\(directory)/bench.qmp")
        vm.recovery.pollMilliseconds = 0
        vm.recovery.allowInject = true
        self.vm = vm
        broker = try Broker(vms: [vm], logger: logger)
        try broker.start()
    }

    func stop() {
        broker.stop()
        relay.kill(signal: SIGKILL)
        loopRelay.close()
        qemu.kill(signal: SIGKILL)
    }

    /// `query-status` round trips, the three paths taken in turn trial by trial (the order
    /// rotating), so load drift on a shared machine hits all of them alike.
    func roundTrips(trials: Int, warmUp: Int) throws -> (direct: [Double], socat: [Double], loopRelay: [Double], broker: [Double]) {
        let clients = try [directSocket, relaySocket, loopRelaySocket, vm.socketPath].map { path in
            let client = try QMPClient(path: path)
            try client.negotiate()
            for _ in 0..<warmUp { _ = try client.execute("query-status") }
            return client
        }
        var samples: [[Double]] = Array(repeating: [], count: clients.count)
        for trial in 0..<trials {
            for step in clients.indices {
                let path = (trial + step) % clients.count
                samples[path].append(try Clock.microseconds { _ = try clients[path].execute("query-status") })
            }
        }
        return (samples[0], samples[1], samples[2], samples[3])
    }
}

func waitForSocket(_ path: String, timeout: Double = 20) throws {
    var info = stat()
    let deadline = Deadline(after: timeout)
    while stat(path, &info) != 0 {
        if deadline.passed { throw QMPClient.Failure("\(path) did not appear") }
        usleep(2000)
    }
}
