import ErrorEvents

/// One `VFIO_PCI_ERROR` as emitted, kept for the operator after the event itself is gone.
public struct ErrorHistoryEntry: Hashable, Sendable {
    public var vm: String
    public var device: String
    /// The host address at the time: a device id may later be re-added on another function.
    public var host: String
    /// When the broker emitted the event, in microseconds since the Unix epoch.
    public var microsecondsSinceEpoch: Int64
    public var severity: Severity
    /// The event's `errors` member: the host's (sysfs) names.
    public var errors: [String]
    /// Signals coalesced into the event; at least 1.
    public var count: Int
    public var source: ErrorSource
    public var action: PCIErrorEvent.Action
    /// The flag after the error was taken into account.
    public var linkError: Bool

    public init(
        vm: String, device: String, host: String, microsecondsSinceEpoch: Int64,
        severity: Severity, errors: [String], count: Int, source: ErrorSource,
        action: PCIErrorEvent.Action, linkError: Bool
    ) {
        self.vm = vm
        self.device = device
        self.host = host
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
        self.severity = severity
        self.errors = errors
        // Same rule as `HostError`: something was signalled, so it happened at least once.
        self.count = max(1, count)
        self.source = source
        self.action = action
        self.linkError = linkError
    }

    /// The entry for an event the broker is emitting (or has just emitted).
    public init(
        vm: String, device: String, host: String, _ event: PCIErrorEvent,
        microsecondsSinceEpoch: Int64 = WallClock.microsecondsSinceEpoch()
    ) {
        self.init(
            vm: vm, device: device, host: host, microsecondsSinceEpoch: microsecondsSinceEpoch,
            severity: event.severity, errors: event.errorNames, count: event.count,
            source: event.source, action: event.action, linkError: event.linkError)
    }
}
