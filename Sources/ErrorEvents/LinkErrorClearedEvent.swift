/// The device-specific members of `VFIO_LINK_ERROR_CLEARED`; the QMP layer adds `device` and `host`.
public struct LinkErrorClearedEvent: Hashable, Sendable {
    public static let name = "VFIO_LINK_ERROR_CLEARED"

    public enum Reason: String, Sendable, Hashable, CaseIterable, Codable {
        /// The host reported successful recovery (uevent `SUCCESSFUL_RECOVERY` or `DEVICE_ONLINE`).
        case hostRecovered = "host-recovered"
        /// `vfio-link-error-clear`.
        case `operator`
    }

    public let reason: Reason

    public init(reason: Reason) {
        self.reason = reason
    }
}
