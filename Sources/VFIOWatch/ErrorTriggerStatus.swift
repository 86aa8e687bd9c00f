/// What became of a device's error trigger, for `query-vfio-devices` and QMP errors.
package struct ErrorTriggerStatus: Hashable, Sendable {
    package let mode: ErrorTriggerMode
    /// True while the broker hears the device's error interrupt.
    package let active: Bool
    /// How the trigger was taken over; nil unless `mode` is `takeover` and it worked.
    package let method: VFIOTakeoverMethod?
    /// Why it is not active, in words for an operator; nil when active or not wanted.
    package let error: String?

    package init(mode: ErrorTriggerMode, active: Bool, method: VFIOTakeoverMethod? = nil, error: String? = nil) {
        self.mode = mode
        self.active = active
        self.method = method
        self.error = error
    }

    /// A takeover that worked.
    package static func takenOver(by method: VFIOTakeoverMethod) -> ErrorTriggerStatus {
        ErrorTriggerStatus(mode: .takeover, active: true, method: method)
    }

    /// A takeover that failed: the device is not protected by its error interrupt.
    package static func takeoverFailed(_ error: VFIOTakeoverError) -> ErrorTriggerStatus {
        ErrorTriggerStatus(mode: .takeover, active: false, error: error.description)
    }

    /// A takeover released (device deleted, or the broker stopped watching it).
    package static let released = ErrorTriggerStatus(mode: .takeover, active: false)
}
