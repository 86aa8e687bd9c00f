import QMPWire

/// The demo's readable timeline: one row per event (time since the first, event, device,
/// severity, action), ANSI colour when asked for, or the raw event JSON with `--json`.
final class Timeline {
    private let options: RecoveryDemo.Options
    private let emit: (String) -> Void
    private var origin: Int64?

    init(options: RecoveryDemo.Options, emit: @escaping (String) -> Void) {
        self.options = options
        self.emit = emit
    }

    private func paint(_ text: String, _ code: String) -> String {
        options.colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    func header() {
        emit(paint(pad("time", 11) + pad("event", 26) + pad("device", 8) + pad("severity/origin", 18) + "action", "1"))
    }

    func step(_ title: String) {
        guard !options.json else { return }
        emit(paint("-- \(title)", "36"))
    }

    func event(_ event: JSON) {
        if options.json {
            emit(event.description)
            return
        }
        let stamp = event.eventMicroseconds
        let start = origin ?? stamp
        origin = start
        let milliseconds = Double(stamp - start) / 1000
        let time = String(Int(milliseconds)) + "." + String(Int(milliseconds * 10) % 10) + " ms"
        let name = event["event"]?.string ?? "?"
        let data = event["data"]
        let severity = data?["severity"]?.string ?? (data?["origin"]?.string ?? data?["reason"]?.string ?? data?["result"]?.string ?? "")
        let action = data?["action"]?.string ?? ""
        let colour = action == "stop" || name == "STOP" ? "31" : name == "RESUME" || name == "VFIO_LINK_ERROR_CLEARED" ? "32" : "0"
        var row = pad(time, 11) + pad(name, 26) + pad(data?["device"]?.string ?? "", 8) + pad(severity, 18) + action
        if data?["link-error"]?.bool == true { row += "  [link-error]" }
        if let note = data?["note"]?.string { row += "  (\(note))" }
        emit(paint(row, colour))
    }

    func missing(_ name: String) {
        if options.json { return }
        emit(paint("   expected \(name), none came within 10 s", "31;1"))
    }

    func verdict(_ passed: Bool, status: String, flag: Bool) {
        if options.json { return }
        let text = passed
            ? "PASS: errors reported and forwarded, the flagged link reset stopped the VM, host recovery let auto-cont resume it, and the guest's own link reset cleared the flag (VM \(status))."
            : "FAIL: the drill did not go as designed (VM \(status), link-error flag \(flag ? "set" : "clear"))."
        emit(paint(text, passed ? "32;1" : "31;1"))
    }
}
