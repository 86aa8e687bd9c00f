/// The device-specific members of `VFIO_PCI_ERROR`; the QMP layer adds `device` and `host`
/// (it knows which device's machine it drove) and serialises the event.
public struct PCIErrorEvent: Hashable, Sendable {
    public static let name = "VFIO_PCI_ERROR"

    /// What the broker does about this error.
    public enum Action: String, Sendable, Hashable, CaseIterable, Codable {
        case none
        /// Injected into the guest (see `GuestAERError`).
        case forward
        /// The broker stops the VM because of this error.
        case stop
    }

    public let severity: Severity
    public let errors: [AERError]
    public let count: Int
    public let source: ErrorSource
    /// The flag after this error was taken into account.
    public let linkError: Bool
    public let action: Action

    public init(
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

    public init(_ error: HostError, linkError: Bool, action: Action) {
        self.init(
            severity: error.severity, errors: error.errors, count: error.count,
            source: error.source, linkError: linkError, action: action)
    }

    /// The `errors` member: the host's own (sysfs) names, which is what an operator will
    /// find again in `aer_dev_*` and the kernel log.
    public var errorNames: [String] { errors.map(\.sysfsName) }
}
