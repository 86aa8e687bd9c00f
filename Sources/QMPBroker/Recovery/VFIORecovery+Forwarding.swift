import ErrorEvents

/// Where QEMU took an injected error, and what a reader of the event should know.
struct InjectionOutcome {
    /// The guest device that took it; nil when QEMU refused it everywhere.
    let target: String?
    let notes: [String]
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
    /// Injects the error into the guest, one HMP command per AER bit (QEMU 7.2 takes one),
    /// at the device's injection target; where QEMU refuses it there (a vfio-pci device's
    /// AER capability is passed through, not emulated), at the port above, which is then
    /// kept as the target. `done` gets the outcome once QEMU has answered.
    func forward(_ error: GuestAERError, to device: WatchedDevice, done: @escaping (InjectionOutcome) -> Void) {
        var targets = [device.injectTarget]
        if let port = device.portAbove, port != device.injectTarget { targets.append(port) }
        inject(error, device: device, targets: targets[...], refusals: [], done: done)
    }

    private func inject(_ error: GuestAERError, device: WatchedDevice, targets: ArraySlice<String>,
                        refusals: [String], done: @escaping (InjectionOutcome) -> Void) {
        guard let target = targets.first else {
            logger.error("QEMU took the AER injection nowhere", metadata: ["device": "\(device.id)", "answers": "\(refusals.joined(separator: "; "))"])
            return done(InjectionOutcome(target: nil, notes: ["not forwarded: \(refusals.joined(separator: "; "))"]))
        }
        // Pasted into an HMP command line: only a QEMU device id (issue 13 item 9).
        guard QEMUDeviceID.isWellFormed(target) else {
            return inject(error, device: device, targets: targets.dropFirst(),
                          refusals: refusals + ["'\(target)' is not a QEMU device id"], done: done)
        }
        let steps = error.injectionPlan.commands
        var answers: [String?] = []
        for step in steps {
            let line = step.commandLine(target: target)
            commands.execute("human-monitor-command", arguments: .object(["command-line": .string(line)]),
                                for: .injection) {
                [weak self, weak device] reply in
                answers.append(Self.refusal(in: reply))
                guard answers.count == steps.count, let self, let device else { return }
                let refused = answers.compactMap { $0 }
                if refused.isEmpty {
                    if target != device.injectTarget {
                        logger.notice("injecting at the port above from now on",
                                      metadata: ["device": "\(device.id)", "inject-at": "\(target)"])
                        device.injectTarget = target
                    }
                    return done(InjectionOutcome(target: target, notes: notes(for: error, at: target, on: device)))
                }
                logger.warning("QEMU refused the AER injection",
                               metadata: ["device": "\(device.id)", "inject-at": "\(target)", "answer": "\(refused[0])"])
                inject(error, device: device, targets: targets.dropFirst(),
                       refusals: refusals + ["QEMU refused it at \(target): \(refused[0])"], done: done)
            }
        }
    }

    /// QEMU's refusal in an HMP answer, or nil when it took the injection ("OK id: ...").
    private static func refusal(in reply: UpstreamReply) -> String? {
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
    private func notes(for error: GuestAERError, at target: String, on device: WatchedDevice) -> [String] {
        var notes: [String] = []
        if target != device.id { notes.append("injected at \(target)") }
        let plan = error.injectionPlan
        // The log line says what the event says: only QEMU before 8.1 keeps it from the guest.
        if let delivery = plan.correctableDelivery(on: qemuVersion) {
            logger.info("correctable error injected: \(delivery)",
                        metadata: ["device": "\(device.id)", "qemu": "\(qemuVersion.map { "\($0)" } ?? "unknown")"])
        }
        if let qemuVersion, !plan.reachesGuest(on: qemuVersion) { notes.append(AERInjectionPlan.undeliveredNote) }
        return notes
    }
}
