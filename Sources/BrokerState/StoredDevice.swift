import ErrorEvents

/// One watched device of one VM as the state file holds it: enough to rebuild its
/// `DeviceErrorMachine` after a broker restart (`restoring: state, counters: counters`).
package struct StoredDevice: Hashable, Sendable {
    package var vm: String
    /// The device's QEMU id (`-device ...,id=`).
    package var id: String
    /// The host PCI address (`0000:01:00.0`).
    package var host: String
    package var policy: DevicePolicy
    package var state: PersistedDeviceState
    package var counters: DeviceErrorCounters
    /// Where errors are injected when not at the device itself (`inject-at`).
    package var injectAt: String?
    /// How the device came to be watched (`config`, `command`, `discovered`); nil for a
    /// row written before the broker recorded it.
    package var origin: String?

    package init(
        vm: String, id: String, host: String, policy: DevicePolicy = .default,
        state: PersistedDeviceState = .clean, counters: DeviceErrorCounters = DeviceErrorCounters(),
        injectAt: String? = nil, origin: String? = nil
    ) {
        self.injectAt = injectAt
        self.origin = origin
        self.vm = vm
        self.id = id
        self.host = host
        self.policy = policy
        self.state = state
        self.counters = counters
    }
}
