/// One `pcie_aer_inject_error` HMP command (sent through `human-monitor-command`).
///
/// QEMU 7.2: `pcie_aer_inject_error [-a] [-c] <id> <error_status> [<tlp header> ...]`.
/// A status that is not one of QEMU's names is parsed with `strtoul(..., 0)`, so the hex
/// form `0x4000` works, and `-c` then selects the correctable register (with a name, 7.2
/// ignores `-c`; 8.0 rejects it). QEMU then requires exactly one supported bit
/// (`pcie_aer_inject_error`: "one and only one bit must be set", else `-EINVAL`): hence
/// one command per bit. `-a` (advisory non-fatal) is never used: it would turn a non-fatal
/// error into a correctable one, which the guest does not recover from.
package struct AERInjectionCommand: Hashable, Sendable {
    package static let hmpCommand = "pcie_aer_inject_error"

    package let correctable: Bool
    package let bit: Int

    package init(correctable: Bool, bit: Int) {
        self.correctable = correctable
        self.bit = bit
    }

    package var status: UInt32 { UInt32(1) << UInt32(bit) }

    /// The status as QEMU parses it: hex, never a name (names differ from sysfs and disable `-c`).
    package var statusArgument: String { "0x" + String(status, radix: 16) }

    /// The severity QEMU gives this bit while the guest keeps the reset-default severity register.
    package var severityAtGuestDefaults: Severity {
        QEMUAERModel.severityAtDefaults(bit: bit, correctable: correctable)
    }

    /// The arguments after the command name. `target` is a qdev id (QEMU ids contain no
    /// blanks or quotes, so no quoting is needed): the device itself when it reports errors,
    /// else the nearest port above it (SPEC section 9); the I/O layer knows which.
    package func arguments(target: String) -> [String] {
        correctable ? ["-c", target, statusArgument] : [target, statusArgument]
    }

    /// The `command-line` for `human-monitor-command`.
    package func commandLine(target: String) -> String {
        ([Self.hmpCommand] + arguments(target: target)).joined(separator: " ")
    }
}

/// How to raise a `GuestAERError` in QEMU: the commands, in order, and what could not be done.
package struct AERInjectionPlan: Hashable, Sendable {
    package let correctable: Bool
    package let commands: [AERInjectionCommand]
    /// Host bits QEMU cannot inject (e.g. uncorrectable bits 26 to 31 of newer kernels);
    /// left out, for the log.
    package let uninjectable: UInt32
    /// None of the host's bits could be injected; the severity's default bit stands in.
    package let usesDefaultBit: Bool

    /// Orders the bits so that the first injected error, the one QEMU's First Error
    /// Pointer and first error message name, is one QEMU classifies with the host's
    /// severity when the guest keeps the default severity register; then ascending.
    package init(_ error: GuestAERError) {
        let supported = QEMUAERModel.supported(correctable: error.correctable)
        var injectable = error.status & supported
        uninjectable = error.status & ~supported
        usesDefaultBit = injectable == 0
        if usesDefaultBit { injectable = GuestAERError.defaultStatus(for: error.severity) }
        correctable = error.correctable

        var matching: [AERInjectionCommand] = []
        var others: [AERInjectionCommand] = []
        for bit in 0..<32 where injectable & (UInt32(1) << UInt32(bit)) != 0 {
            let command = AERInjectionCommand(correctable: error.correctable, bit: bit)
            if command.severityAtGuestDefaults == error.severity {
                matching.append(command)
            } else {
                others.append(command)
            }
        }
        commands = matching + others
    }

    /// The severity the guest will see first, assuming its severity register is at reset
    /// defaults. When it differs from the host's (a host whose firmware reprogrammed the
    /// severity register), the log should say so: a fatal host error the guest takes as
    /// non-fatal will not make the guest reset the link.
    package var guestSeverityAtDefaults: Severity {
        commands.first?.severityAtGuestDefaults ?? (correctable ? .correctable : .nonFatal)
    }

    /// Whether the injection can reach the guest's AER driver at all on this QEMU.
    /// Correctable errors before 8.1 are only recorded in the device's AER status
    /// registers: still inject, and log `undeliveredNote` rather than a failure.
    package func reachesGuest(on qemu: QEMUVersion) -> Bool {
        !correctable || qemu >= .deliversCorrectableAERErrors
    }

    package static let undeliveredNote = "recorded, not delivered (QEMU < 8.1)"
    package static let deliveredNote = "delivered to the guest (QEMU >= 8.1)"
    package static let deliveryUnknownNote = "delivery to the guest unknown (QEMU version not known)"

    /// What becomes of a correctable injection on `qemu` (nil: version not known), in the
    /// words of the event's note; nil for an uncorrectable plan, which always reaches it.
    package func correctableDelivery(on qemu: QEMUVersion?) -> String? {
        guard correctable else { return nil }
        guard let qemu else { return Self.deliveryUnknownNote }
        return reachesGuest(on: qemu) ? Self.deliveredNote : Self.undeliveredNote
    }
}

extension GuestAERError {
    package var injectionPlan: AERInjectionPlan { AERInjectionPlan(self) }
}
