/// The device-specific members of `VFIO_PCI_ERROR`; the QMP layer adds `device` and `host`
/// (it knows which device's machine it drove) and serialises the event.
package struct PCIErrorEvent: Hashable, Sendable {
    package static let name = "VFIO_PCI_ERROR"

    /// What the broker does about this error.
    package enum Action: String, Sendable, Hashable, CaseIterable, Codable {
        case none
        /// Injected into the guest (see `GuestAERError`).
        case forward
        /// The broker stops the VM because of this error.
        case stop
    }

    package let severity: Severity
    package let errors: [AERError]
    package let count: Int
    package let source: ErrorSource
    /// The flag after this error was taken into account.
    package let linkError: Bool
    package let action: Action

    package init(
        severity: Severity, errors: [AERError], count: Int, source: ErrorSource,
        linkError: Bool, action: Action
    ) {
        self.severity = severity
        self.errors = errors
        self.count = count
        self.source = source
        self.linkError = linkError
        self.action = action
    }

    package init(_ error: HostError, linkError: Bool, action: Action) {
        self.init(
            severity: error.severity, errors: error.errors, count: error.count,
            source: error.source, linkError: linkError, action: action)
    }

    /// The `errors` member: the host's own (sysfs) names, which is what an operator will
    /// find again in `aer_dev_*` and the kernel log.
    package var errorNames: [String] { errors.map(\.sysfsName) }
}
