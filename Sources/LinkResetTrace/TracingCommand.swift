import QMPWire

/// One QMP command the broker sends to turn QEMU's reset tracing on or off, as data: its
/// name, its arguments, and how to tell from the reply whether it worked.
package enum TracingCommand: Hashable, Sendable {
    /// `trace-event-get-state {"name": N}`: whether the VMM already had the event on, so
    /// detaching leaves it as it was. `N` may be a pattern with `*`.
    case getTraceEventState(name: String)
    /// `trace-event-set-state {"name": N, "enable": B}`. With the `log` backend this alone
    /// makes QEMU 7.2 print the event (its log mask always includes `LOG_TRACE`).
    case setTraceEventState(name: String, enable: Bool)
    /// `human-monitor-command {"command-line": "logfile \"PATH\""}`: sends all of QEMU's
    /// `qemu_log` output (traces and `-d` items alike) to PATH.
    case setLogFile(path: String)

    package struct Failure: Error, Equatable, CustomStringConvertible {
        package let description: String
    }

    package var name: String {
        switch self {
        case .getTraceEventState: "trace-event-get-state"
        case .setTraceEventState: "trace-event-set-state"
        case .setLogFile: "human-monitor-command"
        }
    }

    /// A fresh arguments object (JSON values are not shared between messages).
    package var arguments: JSON {
        switch self {
        case .getTraceEventState(let name):
            .object(["name": .string(name)])
        case .setTraceEventState(let name, let enable):
            .object(["name": .string(name), "enable": .bool(enable)])
        case .setLogFile(let path):
            .object(["command-line": .string("logfile \"\(path)\"")])
        }
    }

    /// `{"execute": name, "arguments": {...}}`, without an `id` (the session adds its own).
    package var message: JSON { .object(["execute": .string(name), "arguments": arguments]) }

    /// `message`'s members as QEMU writes them, closing brace included: what follows
    /// `{"id": N, ` on the wire. The broker sends the same few commands at every check of
    /// every VM, so it encodes each once.
    package var members: [UInt8] { Array(message.serialized().dropFirst()) }

    /// Checks the reply message. HMP reports failure as *text* in a successful reply:
    /// `logfile` answers `""` on success and e.g. `"Error opening logfile /x: No such file
    /// or directory\r\n"` on failure, and a failed `logfile` leaves QEMU logging nowhere
    /// (it closed the old target first) until a `logfile` succeeds.
    package func check(reply: JSON) -> Failure? {
        if let error = reply["error"] {
            let text = error["desc"]?.string ?? error.description
            return Failure(description: "\(name) failed: \(text)")
        }
        guard let result = reply["return"] else { return Failure(description: "\(name): no return in \(reply)") }
        switch self {
        case .getTraceEventState:
            return result.kind == .array ? nil : Failure(description: "\(name): unexpected return \(result)")
        case .setTraceEventState:
            return nil
        case .setLogFile:
            let text = result.string ?? result.description
            return text.isEmpty ? nil
                : Failure(description: "logfile failed: \(text.trimmingSuffix(while: \.isNewline))")
        }
    }

    /// `TraceEventInfo` entries of a `trace-event-get-state` reply: name → enabled. Events
    /// QEMU reports as `unavailable` (not compiled in) are left out.
    package static func traceEventStates(fromReply reply: JSON) -> [String: Bool] {
        var states: [String: Bool] = [:]
        for info in reply["return"]?.elements ?? [] {
            guard let name = info["name"]?.string, let state = info["state"]?.string else { continue }
            switch state {
            case "enabled": states[name] = true
            case "disabled": states[name] = false
            default: break
            }
        }
        return states
    }
}

extension String {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var result = self[...]
        while let last = result.last, predicate(last) { result = result.dropLast() }
        return result
    }
}
