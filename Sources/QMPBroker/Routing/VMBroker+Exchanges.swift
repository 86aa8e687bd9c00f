import ErrorEvents
import LinkResetTrace
import QMPSessions
import QMPWire

/// The VM's multi-step exchanges with its VMM (`exchange`), as async methods in its
/// isolation: each step is one command, awaited (the reply resumes the method on the VM's
/// loop), and the state it depends on is checked again after every `await`, because
/// anything may have happened meanwhile (the VM stopping, the VMM gone, the device
/// removed, another refresh). What they learn goes to the part as an input.
extension VMBroker {
    /// One of the broker's own commands, awaited.
    func reply(to command: String, arguments: JSON? = nil, for purpose: BrokerPurpose) async -> UpstreamReply {
        await withCheckedContinuation { continuation in
            upstream.execute(command, arguments: arguments, for: purpose) { continuation.resume(returning: $0) }
        }
    }

    /// One QOM property as a string; nil when QEMU has none (or could not be asked).
    func qomProperty(_ name: String, of path: String, for purpose: BrokerPurpose) async -> String? {
        let arguments = JSON.object(["path": .string(path), "property": .string(name)])
        guard case .reply(let line) = await reply(to: "qom-get", arguments: arguments, for: purpose) else { return nil }
        return line.json?["return"]?.string
    }

    /// Where a watched device sits (its QEMU type and the port above it), then the errors
    /// counted while nobody watched; also checks that a configured `inject-at` exists.
    func learnPlacement(of device: WatchedDevice) async {
        let path = VFIORecovery.qomPath(of: device.id)
        let type = await qomProperty("type", of: path, for: .learnPlacement)
        let bus = await qomProperty("parent_bus", of: path, for: .learnPlacement)
        guard isRunning, recovery.devices[device.id] === device else { return }  // removed meanwhile
        run(recovery.handle(.placed(device: device.id, type: type, parentBus: bus)))
        if device.injectAtConfigured {
            let target = await qomProperty("type", of: VFIORecovery.qomPath(of: device.injectTarget), for: .learnPlacement)
            guard isRunning, recovery.devices[device.id] === device else { return }
            if target == nil { run(recovery.handle(.injectTargetMissing(device: device.id))) }
        }
    }

    /// Walks QOM for vfio-pci devices, as a management tool would, and watches those not
    /// yet known (`VFIODiscovery`).
    func discoverDevices() async {
        for container in VFIODiscovery.containers where isRunning {
            guard case .reply(let line) = await reply(to: "qom-list", arguments: .object(["path": .string(container)]),
                                                      for: .discovery),
                  let listing = line.json?["return"] else { continue }
            for path in VFIODiscovery.vfioChildren(of: container, in: listing) {
                let id = VFIODiscovery.deviceID(forPath: path)
                guard isRunning else { return }
                guard recovery.devices[id] == nil else { continue }
                let host = await qomProperty("host", of: path, for: .discovery)
                let sysfsdev = await qomProperty("sysfsdev", of: path, for: .discovery)
                guard isRunning, recovery.devices[id] == nil else { continue }  // added meanwhile
                run(recovery.handle(.discovered(id: id, path: path, host: VFIODiscovery.hostAddress(host: host, sysfsdev: sysfsdev))))
            }
        }
    }

    /// The guest's PCI topology from `query-pci`, and each watched device's bridges through
    /// QOM's `parent_bus` (which holds even while `query-pci` does not list the device,
    /// behind a bridge whose bus number is still 0); then the link-reset watcher goes on.
    func readTopology() async {
        var topology: PCITopology?
        if case .reply(let line) = await reply(to: "query-pci", for: .pciTopology), let listing = line.json?["return"] {
            topology = try? PCITopology(queryPCI: listing)
        }
        var parentBuses: [String: String] = [:]
        for device in recovery.orderedDevices where isRunning {
            let path = VFIORecovery.qomPath(of: device.id)
            if let bus = await qomProperty("parent_bus", of: path, for: .pciTopology) { parentBuses[device.id] = bus }
        }
        guard isRunning, let linkResetWatcher else { return }
        run(linkResetWatcher.topologyRead(topology, parentBuses: parentBuses, vmmReady: upstream.isReady))
    }

    /// Injects a forwarded error into the guest, one HMP command per AER bit (QEMU 7.2
    /// takes one), at each of the device's targets in turn until QEMU takes it all; then
    /// recovery announces the error as it went.
    func forwardToGuest(_ error: GuestAERError, device id: String, ticket: UInt64, event: PCIErrorEvent,
                        notes: [String]) async {
        guard let device = recovery.devices[id] else { return }
        let plan = error.injectionPlan
        var refusals: [String] = []
        var taken: String?
        targets: for target in VFIORecovery.injectionTargets(of: device) {
            // Pasted into an HMP command line: only a QEMU device id.
            guard QEMUDeviceID.isWellFormed(target) else {
                refusals.append("'\(target)' is not a QEMU device id")
                continue
            }
            for step in plan.commands {
                let arguments = JSON.object(["command-line": .string(step.commandLine(target: target))])
                let reply = await reply(to: "human-monitor-command", arguments: arguments, for: .injection)
                guard isRunning, recovery.devices[id] === device else { return }
                if let refused = VFIORecovery.refusal(in: reply) {
                    logger.warning("QEMU refused the AER injection",
                                   metadata: ["device": "\(id)", "inject-at": "\(target)", "answer": "\(refused)"])
                    refusals.append("QEMU refused it at \(target): \(refused)")
                    continue targets
                }
            }
            taken = target
            break
        }
        let outcome = InjectionOutcome(target: taken, refusals: refusals, plan: plan)
        run(recovery.handle(.forwarded(event, device: id, ticket: ticket, notes: notes, outcome: outcome)))
    }
}
