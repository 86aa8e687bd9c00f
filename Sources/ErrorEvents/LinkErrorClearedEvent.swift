/// The device-specific members of `VFIO_LINK_ERROR_CLEARED`; the QMP layer adds `device` and `host`.
package struct LinkErrorClearedEvent: Hashable, Sendable {
    package static let name = "VFIO_LINK_ERROR_CLEARED"

    package enum Reason: String, Sendable, Hashable, CaseIterable, Codable {
        /// The guest reset the link, the broker stopped the VM for it, and the VM was resumed
        /// (by an operator, or by auto-cont once the host recovered): the guest re-initialises
        /// the device it was resetting.
        case guestLinkReset = "guest-link-reset"
        /// The VM was reset after the host had recovered the device: the guest starts afresh.
        case vmReset = "vm-reset"
        /// `vfio-link-error-clear`.
        case `operator`
    }

    package let reason: Reason

    package init(reason: Reason) {
        self.reason = reason
    }
}
