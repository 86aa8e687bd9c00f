/// A device's error state as `query-vfio-devices` shows it.
package enum DeviceErrorStatus: String, Sendable, Hashable, CaseIterable, Codable {
    /// No error since the broker attached, other than correctable ones.
    case healthy
    /// A non-fatal error was seen and the host has not reported recovery yet.
    case nonFatal = "non-fatal"
    /// The link-error flag is set; the VM was not stopped by the broker (or was resumed since).
    case linkError = "link-error"
    /// The flag is set and the broker stopped (or is stopping) the VM.
    case stopped
    /// The host recovered the device or the operator cleared it.
    case recovered
}
