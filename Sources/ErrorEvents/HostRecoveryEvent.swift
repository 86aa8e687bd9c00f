/// How far the host's own AER recovery of a device has got, as the kernel's uevents tell it.
package enum HostRecovery: String, Sendable, Hashable, CaseIterable, Codable {
    /// No uncorrectable error since the broker attached (or since the last recovery ended).
    case none
    /// An uncorrectable error is being handled (`ERROR_EVENT=BEGIN_RECOVERY`, or the error itself).
    case inProgress = "in-progress"
    /// `SUCCESSFUL_RECOVERY`: the host is fine again. The guest's view of the device is not
    /// (vfio-pci has no slot_reset, so the device was reset under the guest; SPEC 10).
    case successful
    /// `FAILED_RECOVERY`: the device stays broken.
    case failed
}

/// The device-specific members of `VFIO_HOST_RECOVERY`; the QMP layer adds `device` and `host`.
package struct HostRecoveryEvent: Hashable, Sendable {
    package static let name = "VFIO_HOST_RECOVERY"

    package enum Result: String, Sendable, Hashable, CaseIterable, Codable {
        case successful
        case failed
    }

    package let result: Result
    /// The flag after the recovery was taken into account: host recovery never clears it.
    package let linkError: Bool

    package init(result: Result, linkError: Bool) {
        self.result = result
        self.linkError = linkError
    }
}
