import QMPWire

/// A VMM event as the broker acts on it, read once from the line. Clients still get the
/// line's bytes exactly as QEMU wrote them; this only says what the broker must do.
package enum UpstreamEvent: Equatable, Sendable {
    case stop
    case resume
    /// A system reset (`system_reset`, a guest reboot).
    case reset
    /// QEMU let a device go: `data.device` (absent for anonymous devices) and `data.path`.
    case deviceDeleted(id: String?, path: String?)
    /// Any other event (nil: the line names none the broker can read without parsing).
    case other(name: String?)

    package init(_ line: UpstreamLine) {
        switch line.plainString("event") {
        case "STOP": self = .stop
        case "RESUME": self = .resume
        case "RESET": self = .reset
        case "DEVICE_DELETED":
            let data = line.json?["data"]
            self = .deviceDeleted(id: data?["device"]?.string, path: data?["path"]?.string)
        case let name: self = .other(name: name)
        }
    }
}
