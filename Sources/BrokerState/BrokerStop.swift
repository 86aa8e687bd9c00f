/// The VM-level fact "the broker stopped this VM at T, and still owns that pause".
///
/// Derived, not stored separately: ownership lives per device (`stoppedByBroker`, as in
/// the domain), and each device row carries the time its ownership began. A second
/// VM-level row would be a second copy of the same truth, written on the hot path and
/// able to disagree with the device rows after a crash between the two writes.
package struct BrokerStop: Hashable, Sendable {
    package var vm: String
    /// When the earliest still-owned stop was recorded, in microseconds since the epoch.
    package var microsecondsSinceEpoch: Int64
    /// The devices whose errors the pause belongs to, earliest first.
    package var devices: [String]

    package init(vm: String, microsecondsSinceEpoch: Int64, devices: [String]) {
        self.vm = vm
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
        self.devices = devices
    }
}
