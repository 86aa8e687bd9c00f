/// The part of a device's error state that must survive a broker restart (SPEC 1.4).
public struct PersistedDeviceState: Hashable, Sendable, Codable {
    /// The link-error flag: a fatal error was seen and nobody has cleared it since.
    public var linkError: Bool
    /// The broker stopped (or is stopping) the VM because of this device and nobody has
    /// stopped or resumed it since: the only pause `auto-cont` may undo.
    public var stoppedByBroker: Bool

    public init(linkError: Bool, stoppedByBroker: Bool) {
        self.linkError = linkError
        self.stoppedByBroker = stoppedByBroker
    }

    public static let clean = PersistedDeviceState(linkError: false, stoppedByBroker: false)
}
