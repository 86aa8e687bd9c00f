import BrokerTesting
import Glibc
import Logging
import QMPBroker
import QMPWire
import VFIOWatch

/// The broker's own share of error → stop: a scripted VMM stamps the `stop` bytes as they
/// arrive (no QEMU, no vCPU pause), for a fatal eventfd and for a guest Secondary Bus
/// Reset seen in the trace log; each beside the bare relay of the same trigger.
final class ScriptedStopBench {
    /// A guest setting Secondary Bus Reset in the bridge control of the root port above dev0,
    /// as QEMU's `pci_cfg_write` trace prints it, and the guest clearing it again.
    static let resetLine = Array("pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x40\n".utf8)
    static let releaseLine = Array("pci_cfg_write pcie-root-port 00:1c.0 @0x3e <- 0x0\n".utf8)

    let vmm: ScriptedVMM
    let broker: Broker
    let vm: VMConfiguration
    let client: QMPClient
    let fatalFD: Int32

    init(directory: String, group: ScriptedVMMGroup, logger: Logger) throws {
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

    /// Fatal eventfd with policy `stop`, each trial beside one of the bare relay (so load
    /// drift hits both alike); after each trial the VM is resumed and the flag cleared
    /// through the broker (it starts running and unflagged, and ends so).
    func eventFDTrials(_ trials: Int, bare: BareStopPaths) throws -> (broker: [Double], bare: [Double]) {
        var samples: ([Double], [Double]) = ([], [])
        for _ in 0..<trials {
            samples.0.append(try Self.timeToStop(at: vmm) { try EventFD.signal(fatalFD) })
            try expectEvent("STOP")
            _ = try client.execute("cont")
            try expectEvent("RESUME")
            _ = try client.execute("vfio-link-error-clear", arguments: .object(["device": .string("dev0")]))
            // Once the broker is quiet again, so its tail of work does not land on the bare trial.
            samples.1.append(try bare.eventFDTrial())
        }
        return samples
    }

    /// A flagged link (fatal eventfd, policy `forward`) reset by the guest: the trace line
    /// appended to the trace log as QEMU would, each trial beside one of the bare relay.
    /// Resuming clears the flag, so each trial flags it.
    func linkResetTrials(_ trials: Int, bare: BareStopPaths) throws -> (broker: [Double], bare: [Double]) {
        _ = try client.execute("vfio-device-set-policy", arguments: .object(["device": .string("dev0"), "policy": .string("forward")]))
        try client.waitForLinkResetWatch()
        let log = open(vm.traceLogPath!, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard log >= 0 else { throw QMPClient.Failure("cannot open the trace log") }
        defer { close(log) }
        var samples: ([Double], [Double]) = ([], [])
        for _ in 0..<trials {
            try EventFD.signal(fatalFD)
            try expectEvent("VFIO_PCI_ERROR")
            samples.0.append(try Self.timeToStop(at: vmm) { try Self.append(Self.resetLine, to: log) })
            try expectEvent("STOP")
            try Self.append(Self.releaseLine, to: log)
            _ = try client.execute("cont")
            try expectEvent("RESUME")
            samples.1.append(try bare.traceLineTrial())
        }
        return samples
    }

    private func expectEvent(_ name: String) throws {
        guard try client.nextEvent(name, timeout: 5) != nil else { throw QMPClient.Failure("no \(name) event") }
    }

    /// Microseconds from `trigger` to the `stop` command's arrival at `peer`.
    static func timeToStop(at peer: ScriptedVMM, _ trigger: () throws -> Void) throws -> Double {
        let before = peer.commands.count
        let start = Clock.nanoseconds()
        try trigger()
        guard let stop = peer.waitForCommand("stop", after: before, timeout: 5) else {
            throw QMPClient.Failure("no stop reached the scripted VMM")
        }
        return Clock.microseconds(since: start, until: stop.receivedAt)
    }

    static func append(_ line: [UInt8], to fd: Int32) throws {
        guard line.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == line.count else {
            throw QMPClient.Failure("trace log write failed")
        }
    }
}
