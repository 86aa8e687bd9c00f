import BrokerTesting
import Glibc
import Logging
import QMPBroker
import VFIOWatch

/// The broker's own share of error → stop: a scripted VMM stamps the `stop` bytes as they
/// arrive (no QEMU, no vCPU pause), for a fatal eventfd and for a guest Secondary Bus
/// Reset seen in the trace log; each beside the bare relay of the same trigger.
final class ScriptedStopBench {
    /// A guest setting Secondary Bus Reset in the bridge control of the root port above dev0,
    /// as QEMU's `pci_cfg_write` trace prints it, and the guest clearing it again.
    static let resetLine = Array("pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40\n".utf8)
    static let releaseLine = Array("pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x0\n".utf8)

    let group: ScriptedVMMGroup
    let vmm: ScriptedVMM
    let broker: Broker
    let vm: VMConfiguration
    let client: QMPClient
    let fatalFD: Int32
    let directory: String

    init(directory: String, group: ScriptedVMMGroup, logger: Logger) throws {
        self.directory = directory
        self.group = group
        vmm = try group.listen(at: "\(directory)/scripted-vmm.qmp", script: VMMScript(machine: .deviceBehindRootPort()))
        var vm = VMConfiguration(name: "scripted", upstreamPath: "\(directory)/scripted-vmm.qmp",
                                 socketPath: "\(directory)/scripted.qmp")
        vm.recovery.pollMilliseconds = 0
        self.vm = vm
        broker = try Broker(vms: [vm], logger: logger)
        try broker.start()
        client = try QMPClient(path: vm.socketPath)
        try client.negotiate()
        _ = try client.execute("vfio-device-add", arguments: .object([
            "id": .string("dev0"), "host": .string("0000:3b:00.0"), "policy": .string("stop"),
        ]))
        fatalFD = try EventFD.makeEventFD()
        _ = try client.execute("vfio-eventfd-add", arguments: .object(["device": .string("dev0"), "severity": .string("fatal")]),
                               fds: [dup(fatalFD)])
    }

    func stop() {
        broker.stop()
        vmm.close()
        close(fatalFD)
    }

    /// Microseconds from `trigger` to the `stop` command's arrival at `peer`.
    private func timeToStop(at peer: ScriptedVMM, _ trigger: () throws -> Void) throws -> Double {
        let before = peer.commands.count
        let start = Clock.nanoseconds()
        try trigger()
        guard let stop = peer.waitForCommand("stop", after: before, timeout: 5) else {
            throw QMPClient.Failure("no stop reached the scripted VMM")
        }
        return Clock.microseconds(since: start, until: stop.receivedAt)
    }

    /// Fatal eventfd with policy `stop`; after each trial the VM is resumed and the flag
    /// cleared through the broker (it starts running and unflagged, and ends so).
    func eventFDTrials(_ trials: Int) throws -> [Double] {
        try (0..<trials).map { _ in
            let sample = try timeToStop(at: vmm) { try EventFD.signal(fatalFD) }
            try expectEvent("STOP")
            _ = try client.execute("cont")
            try expectEvent("RESUME")
            _ = try client.execute("vfio-link-error-clear", arguments: .object(["device": .string("dev0")]))
            return sample
        }
    }

    private func expectEvent(_ name: String) throws {
        guard try client.nextEvent(name, timeout: 5) != nil else { throw QMPClient.Failure("no \(name) event") }
    }

    /// A flagged link (fatal eventfd, policy `forward`) reset by the guest: the trace line
    /// appended to the trace log as QEMU would. Resuming clears the flag, so each trial flags it.
    func linkResetTrials(_ trials: Int) throws -> [Double] {
        _ = try client.execute("vfio-device-set-policy", arguments: .object(["device": .string("dev0"), "policy": .string("forward")]))
        try client.waitForLinkResetWatch()
        let log = open(vm.traceLogPath!, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard log >= 0 else { throw QMPClient.Failure("cannot open the trace log") }
        defer { close(log) }
        return try (0..<trials).map { _ in
            try EventFD.signal(fatalFD)
            try expectEvent("VFIO_PCI_ERROR")
            let sample = try timeToStop(at: vmm) { try Self.append(Self.resetLine, to: log) }
            try expectEvent("STOP")
            try Self.append(Self.releaseLine, to: log)
            _ = try client.execute("cont")
            try expectEvent("RESUME")
            return sample
        }
    }

    /// The same two triggers through `BareStopRelay` to a scripted VMM on a socketpair.
    func bareTrials(_ trials: Int) throws -> (eventFD: [Double], traceLine: [Double]) {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw QMPClient.Failure("socketpair: errno \(errno)")
        }
        let peer = group.serve(connected: pair[1])
        defer {
            peer.close()
            close(pair[0])
        }
        let trigger = try EventFD.makeEventFD()
        defer { close(trigger) }
        let relay = try BareStopRelay(trigger: trigger, output: pair[0])
        let eventFD = try (0..<trials).map { _ in try timeToStop(at: peer) { try EventFD.signal(trigger) } }
        relay.stop()

        let path = "\(directory)/bare.trace.log"
        let log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        let follow = open(path, O_RDONLY | O_CLOEXEC)
        let notify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        defer { [log, follow, notify].forEach { _ = close($0) } }
        guard log >= 0, follow >= 0, notify >= 0, inotify_add_watch(notify, path, UInt32(IN_MODIFY)) >= 0 else {
            throw QMPClient.Failure("cannot follow \(path)")
        }
        let traceRelay = try BareStopRelay(trigger: notify, follow: follow, output: pair[0])
        defer { traceRelay.stop() }
        let traceLine = try (0..<trials).map { _ in try timeToStop(at: peer) { try Self.append(Self.resetLine, to: log) } }
        return (eventFD, traceLine)
    }

    private static func append(_ line: [UInt8], to fd: Int32) throws {
        guard line.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == line.count else {
            throw QMPClient.Failure("trace log write failed")
        }
    }
}
