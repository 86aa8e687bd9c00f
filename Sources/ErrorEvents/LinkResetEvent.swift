/// How the guest reset the link of a watched device.
public enum LinkResetOrigin: String, Sendable, Hashable, CaseIterable, Codable {
    /// Secondary Bus Reset set (bridge control 0x3e, bit 0x40, 0 to 1) on a bridge above the device.
    case guestLinkReset = "guest-link-reset"
    /// A hot reset of the vfio device itself.
    case guestHotReset = "guest-hot-reset"
}

/// The device-specific members of `VFIO_LINK_RESET`; the QMP layer adds `device` and `host`.
public struct LinkResetEvent: Hashable, Sendable {
    public static let name = "VFIO_LINK_RESET"

    public enum Action: String, Sendable, Hashable, CaseIterable, Codable {
        case none
        /// The broker stops the VM because the guest reset a link the host considers broken.
        case stop
    }

    public let linkError: Bool
    public let origin: LinkResetOrigin
    public let action: Action

    public init(linkError: Bool, origin: LinkResetOrigin, action: Action) {
        self.linkError = linkError
        self.origin = origin
        self.action = action
    }
}
