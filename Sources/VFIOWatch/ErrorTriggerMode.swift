/// Where a device's error interrupt goes (the per-device `error-trigger` setting).
public enum ErrorTriggerMode: String, Hashable, Sendable, CaseIterable {
    /// The broker takes the trigger over from the VMM (`VFIOErrorTrigger`).
    case takeover
    /// Eventfds are handed to the broker, as the VMM or an orchestrator arms them.
    case eventfd
    /// No error interrupt: sysfs counters and uevents only.
    case none
}
