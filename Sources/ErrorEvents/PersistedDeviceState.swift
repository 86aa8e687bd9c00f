/// The part of a device's error state that must survive a broker restart (SPEC 1.4).
package struct PersistedDeviceState: Hashable, Sendable, Codable {
    /// The link-error flag: a fatal error was seen and nobody has cleared it since.
    package var linkError: Bool
    /// The broker stopped (or is stopping) the VM because of this device and nobody has
    /// stopped or resumed it since: the only pause `auto-cont` may undo.
    package var stoppedByBroker: Bool

    package init(linkError: Bool, stoppedByBroker: Bool) {
        self.linkError = linkError
        self.stoppedByBroker = stoppedByBroker
    }

    package static let clean = PersistedDeviceState(linkError: false, stoppedByBroker: false)
}
