import ErrorEvents

/// One watched device of one VM as the state file holds it: enough to rebuild its
/// `DeviceErrorMachine` after a broker restart (`restoring: state, counters: counters`).
public struct StoredDevice: Hashable, Sendable {
    public var vm: String
    /// The device's QEMU id (`-device ...,id=`).
    public var id: String
    /// The host PCI address (`0000:01:00.0`).
    public var host: String
    public var policy: DevicePolicy
    public var state: PersistedDeviceState
    public var counters: DeviceErrorCounters
    /// Where errors are injected when not at the device itself (`inject-at`).
    public var injectAt: String?
    /// How the device came to be watched (`config`, `command`, `discovered`); nil for a
    /// row written before the broker recorded it.
    public var origin: String?

    public init(
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
