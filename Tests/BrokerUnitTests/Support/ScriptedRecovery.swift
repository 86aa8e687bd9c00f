import BrokerTesting
import QMPBroker
import QMPWire
import Glibc
import VFIOWatch

/// A broker watching `dev0` from its config (error trigger `eventfd`), in front of a
/// `ScriptedVMM` whose machine has dev0 (vfio-pci) behind the root port rp0 at 00:1c.0;
/// a fake sysfs holds dev0's AER counters; the broker got a fatal eventfd (from a negotiated
/// client's `vfio-eventfd-add`, or inherited through its config) and has learnt where dev0 sits.
final class ScriptedRecovery {
    /// How the broker gets the eventfd: SCM_RIGHTS with `vfio-eventfd-add`, or from its config
    /// (`inherited-eventfd`, a descriptor open in the broker's process).
    enum Handover: Sendable, CaseIterable { case command, config }

    let rig: ScriptedBroker
    let sysfs: FakeSysfsTree
    let client: QMPLineConnection
    let fatalFD: Int32
    private var fatalCount = 0

    var vmm: ScriptedVMM { rig.vmm }

    init(policy: String = "forward", autoCont: Bool = false, device: String = "dev0",
         machine: ScriptedMachine = .deviceBehindRootPort(), traceLog: Bool = false, handover: Handover = .command) throws {
        let fatalFD = try EventFD.makeEventFD()
        self.fatalFD = fatalFD
        var tree: FakeSysfsTree?
        rig = try ScriptedBroker(script: VMMScript(machine: machine)) { configuration, directory in
            let sysfs = FakeSysfsTree(under: directory.path)
            tree = sysfs
            configuration.recovery.sysfsRoot = sysfs.root
            configuration.recovery.pollMilliseconds = 0
            configuration.recovery.allowInject = true
            var watched = VFIORecoverySettings.DeviceConfiguration(id: device, host: sysfs.host)
            watched.policy.mode = .init(rawValue: policy)!
            watched.autoCont = autoCont
            watched.errorTrigger = .eventfd
            configuration.recovery.devices = [watched]
            if traceLog { configuration.traceLogPath = directory.file("vm1.trace.log") }
            if handover == .config {
                configuration.recovery.inheritedEventFDs = [.init(device: device, severity: .fatal, fd: dup(fatalFD))]
            }
        }
        sysfs = tree!
        client = try rig.client()
        if handover == .command {
            try client.send(#"{"execute": "vfio-eventfd-add", "arguments": {"device": "\#(device)", "severity": "fatal"}, "id": "fd"}"#,
                            fds: [fatalFD])
            guard try client.nextReply() == #"{"return": {}, "id": "fd"}"# else { throw QMPClient.Failure("vfio-eventfd-add failed") }
        }
        // Placement is learnt from QOM after attach; errors go to the port above a vfio-pci device.
        let port = machine.devices.first { $0.id == device }.flatMap { ScriptedRecovery.port(ofBus: $0.parentBus) }
        guard try waitForDevice({ $0?["inject-at"]?.string == port }) else { throw QMPClient.Failure("placement never learnt") }
    }

    deinit { _ = close(fatalFD) }

    /// The host sees a fatal DLP: the counter goes up and the eventfd fires.
    func hostFatalError() throws {
        fatalCount += 1
        sysfs.set(correctable: [:], nonFatal: [:], fatal: ["DLP": fatalCount])
        try EventFD.signal(fatalFD)
    }

    /// The host's AER core reports it recovered the device.
    func hostRecovered() {
        rig.broker.deliverUEvent(RecoveryDemo.recoveryUEvent(host: sysfs.host))
    }

    /// The next event named `name` at the client, parsed.
    func nextEvent(_ name: String) throws -> JSON? {
        try client.nextEvent(name).flatMap { try? JSON.parse($0) }
    }

    /// What the broker did to the VM after the first `since` commands, up to a `query-status`
    /// sent now through the client: `stop`, `cont` and HMP injection lines, in order (the
    /// periodic tracing checks are left out). One upstream socket keeps the order, so this
    /// is everything the broker did in answer to inputs it had taken before this call.
    func vmActionsBeforeSync(since: Int) throws -> [String] {
        try client.send(#"{"execute": "query-status", "id": "sync"}"#)
        _ = try client.nextReply()
        return vmm.commands.dropFirst(since).prefix { $0.name != "query-status" }.compactMap { command in
            switch command.name {
            case "stop", "cont": return command.name
            case "human-monitor-command":
                return command.argument("command-line").flatMap { $0.hasPrefix("pcie_aer_inject_error") ? $0 : nil }
            default: return nil
            }
        }
    }

    /// Polls `query-vfio-devices` until the first entry satisfies `condition` (bounded).
    func waitForDevice(_ condition: (JSON?) -> Bool) throws -> Bool {
        let deadline = Deadline(after: 10)
        while !deadline.passed {
            try client.send(#"{"execute": "query-vfio-devices", "id": "devices"}"#)
            let reply = try client.nextReply().flatMap { try? JSON.parse($0) }
            if condition(reply?["return"]?[0]) { return true }
        }
        return false
    }

    /// `/machine/peripheral/rp0/rp0` → `rp0`.
    static func port(ofBus bus: String) -> String? {
        let parts = bus.split(separator: "/")
        return parts.count == 4 && parts[1] == "peripheral" ? String(parts[2]) : nil
    }
}
