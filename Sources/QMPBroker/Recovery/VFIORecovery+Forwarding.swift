import ErrorEvents

/// Where QEMU took an injected error (`VMBroker.forwardToGuest`).
struct InjectionOutcome {
    /// The guest device that took it; nil when QEMU refused it everywhere.
    let target: String?
    /// QEMU's refusals, one per target it refused, in order.
    let refusals: [String]
    /// The HMP commands it took.
    let plan: AERInjectionPlan
}

extension PCIErrorEvent {
    /// This event as it really went: `forward` only if QEMU took the injection.
    func forwarded(_ outcome: InjectionOutcome) -> PCIErrorEvent {
        guard outcome.target == nil else { return self }
        return PCIErrorEvent(severity: severity, errors: errors, count: count, source: source,
                             linkError: linkError, action: .none)
    }
}

extension VFIORecovery {
    /// Where an error for `device` is injected: its injection target, then the port above
    /// it (a vfio-pci device's AER capability is passed through, not emulated, so QEMU
    /// refuses it there); the first QEMU takes becomes the target (`forwarded`).
    static func injectionTargets(of device: WatchedDevice) -> [String] {
        var targets = [device.injectTarget]
        if let port = device.portAbove, port != device.injectTarget { targets.append(port) }
        return targets
    }

    /// QEMU's refusal in an HMP answer, or nil when it took the injection ("OK id: ...").
    static func refusal(in reply: UpstreamReply) -> String? {
        switch reply {
        case .reply(let line):
            guard let message = line.json else { return "unreadable reply" }
            if let text = message["return"]?.string {
                return text.hasPrefix("OK") ? nil : text.split(separator: "\n").first.map(String.init) ?? "empty answer"
            }
            return message["error"]?["desc"]?.string ?? "error reply"
        case .failed(let failure):
            return failure.desc
        }
    }

    /// What a reader of the event should know about how the error reached the guest.
    func notes(for outcome: InjectionOutcome, on device: WatchedDevice) -> [String] {
        guard let target = outcome.target else {
            logger.error("QEMU took the AER injection nowhere",
                         metadata: ["device": "\(device.id)", "answers": "\(outcome.refusals.joined(separator: "; "))"])
            return ["not forwarded: \(outcome.refusals.joined(separator: "; "))"]
        }
        var notes: [String] = []
        if target != device.id { notes.append("injected at \(target)") }
        let plan = outcome.plan
        // The log line says what the event says: only QEMU before 8.1 keeps it from the guest.
        if let delivery = plan.correctableDelivery(on: qemuVersion) {
            logger.info("correctable error injected: \(delivery)",
                        metadata: ["device": "\(device.id)", "qemu": "\(qemuVersion.map { "\($0)" } ?? "unknown")"])
        }
        if let qemuVersion, !plan.reachesGuest(on: qemuVersion) { notes.append(AERInjectionPlan.undeliveredNote) }
        return notes
    }
}
