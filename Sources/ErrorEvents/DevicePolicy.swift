/// What the broker does about a device's errors (SPEC section 5).
public struct DevicePolicy: Hashable, Sendable {
    public enum Mode: String, Sendable, Hashable, CaseIterable, Codable {
        /// Events only; management decides. The link-error flag is still recorded on a
        /// fatal error, as information in the events and in `query-vfio-devices`.
        case report
        /// Events; inject the error into the guest; stop the VM if the guest resets a
        /// link whose flag is set.
        case forward
        /// Events; nothing reaches the guest; stop the VM on any fatal error (and on a
        /// guest link reset while the flag is set, e.g. after an operator `cont`).
        case stop
    }

    public var mode: Mode
    /// After the flag is cleared (host recovery or operator), `cont` a VM the broker
    /// itself stopped, provided nobody stopped or resumed it since.
    public var autoCont: Bool

    public init(_ mode: Mode = .forward, autoCont: Bool = false) {
        self.mode = mode
        self.autoCont = autoCont
    }

    public static let `default` = DevicePolicy()

    /// Whether host errors are injected into the guest.
    package var forwardsToGuest: Bool {
        switch mode {
        case .forward: true
        case .report, .stop: false
        }
    }

    /// Whether a fatal host error stops a running VM at once.
    package var stopsOnFatalError: Bool {
        switch mode {
        case .stop: true
        case .report, .forward: false
        }
    }

    /// Whether a guest link reset of a flagged device stops a running VM.
    package var stopsOnFlaggedLinkReset: Bool {
        switch mode {
        case .forward, .stop: true
        case .report: false
        }
    }
}
