/// How the guest reset the link of a watched device.
package enum LinkResetOrigin: String, Sendable, Hashable, CaseIterable, Codable {
    /// Secondary Bus Reset set (bridge control 0x3e, bit 0x40, 0 to 1) on a bridge above the device.
    case guestLinkReset = "guest-link-reset"
    /// A hot reset of the vfio device itself.
    case guestHotReset = "guest-hot-reset"
}

/// The device-specific members of `VFIO_LINK_RESET`; the QMP layer adds `device` and `host`.
package struct LinkResetEvent: Hashable, Sendable {
    package static let name = "VFIO_LINK_RESET"

    package enum Action: String, Sendable, Hashable, CaseIterable, Codable {
        case none
        /// The broker stops the VM because the guest reset a link the host considers broken.
        case stop
    }

    package let linkError: Bool
    package let origin: LinkResetOrigin
    package let action: Action

    package init(linkError: Bool, origin: LinkResetOrigin, action: Action) {
        self.linkError = linkError
        self.origin = origin
        self.action = action
    }
}
