import BrokerState
import Glibc
import QMPBroker
import QMPWire

/// What a `ScriptedVMM` answers: its script first, then QEMU 7.2's behaviour for the
/// commands the broker sends at attach and on errors, then `CommandNotFound`.
extension ScriptedVMM {
    struct Output {
        /// CLOCK_MONOTONIC nanoseconds to send at; nil: now.
        var due: UInt64?
        var bytes: [UInt8]
    }

    func answer(_ command: ReceivedCommand) -> [Output] {
        traceInBand(command)
        let (scripted, handler) = state.withLock { ($0.script.replies[command.name], $0.script.handler) }
        let reply = scripted ?? handler?(command) ?? state.withLock { builtIn(command, &$0) }
        return render(reply, for: command)
    }

    func render(_ reply: ScriptedReply, for command: ReceivedCommand, due: UInt64? = nil) -> [Output] {
        let id = command.id
        switch reply {
        case .success(let value):
            let text = #"{"return": \#(Self.normalized(value))\#(id.map { ", \"id\": \($0)" } ?? "")}"#
            return [Output(due: due, bytes: Array((text + "\r\n").utf8))]
        case .error(let errorClass, let desc):
            let text = #"{\#(id.map { "\"id\": \($0), " } ?? "")"error": {"class": \#(Self.quoted(errorClass)), "desc": \#(Self.quoted(desc))}}"#
            return [Output(due: due, bytes: Array((text + "\r\n").utf8))]
        case .event(let name, let data):
            return [Output(due: due, bytes: Self.eventBytes(name, data: data))]
        case .sequence(let replies):
            return replies.flatMap { render($0, for: command, due: due) }
        case .delayed(let milliseconds, let inner):
            return render(inner, for: command, due: (due ?? command.receivedAt) + UInt64(milliseconds) * 1_000_000)
        case .held:
            state.withLock { $0.held.append(command) }
            return []
        case .raw(let text):
            return [Output(due: due, bytes: Array(text.utf8))]
        }
    }

    /// As QEMU's dispatcher does before it runs a command: with `monitor_qmp_cmd_in_band` on,
    /// the command's id goes to the log (`logfile`), flushed at once (the broker's canary).
    private func traceInBand(_ command: ReceivedCommand) {
        guard let path = state.withLock({ $0.traceEvents["monitor_qmp_cmd_in_band"] == true ? $0.logPath : nil }) else { return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { return }
        let line = Array("monitor_qmp_cmd_in_band \(command.id ?? "")\n".utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        Glibc.close(fd)
    }

    /// QEMU 7.2's answers, measured on Debian's binary (`-M none -qmp stdio`).
    private func builtIn(_ command: ReceivedCommand, _ state: inout State) -> ScriptedReply {
        switch command.name {
        case "qmp_capabilities", "getfd", "closefd":
            return .empty
        case "query-status":
            let status = state.running ? "running" : "paused"
            return .success(#"{"status": "\#(status)", "singlestep": false, "running": \#(state.running)}"#)
        case "stop":
            // QEMU announces STOP before its reply, and only when the VM was running.
            defer { state.running = false }
            return state.running ? .sequence([.event("STOP"), .empty]) : .empty
        case "cont":
            defer { state.running = true }
            return state.running ? .empty : .sequence([.event("RESUME"), .empty])
        case "system_reset":
            return .sequence([.event("RESET", data: #"{"guest": false, "reason": "host-qmp-system-reset"}"#), .empty])
        case "qom-list":
            return state.script.machine.qomList(command.argument("path") ?? "")
        case "qom-get":
            return state.script.machine.qomGet(command.argument("path") ?? "", property: command.argument("property") ?? "")
        case "query-pci":
            return .success(state.script.machine.queryPCI)
        case "trace-event-get-state":
            let name = command.argument("name") ?? ""
            let enabled = state.traceEvents[name] ?? false
            return .success(#"[{"name": \#(Self.quoted(name)), "vcpu": false, "state": "\#(enabled ? "enabled" : "disabled")"}]"#)
        case "trace-event-set-state":
            guard let name = command.argument("name"), let arguments = command.arguments,
                  let enable = (try? JSON.parse(arguments))?["enable"]?.bool else {
                return .error(class: "GenericError", desc: "Parameter 'enable' is missing")
            }
            state.traceEvents[name] = enable
            return .empty
        case "human-monitor-command":
            // HMP answers text: "" for a `logfile` that worked, "OK id: ..." for an injection.
            let line = command.argument("command-line") ?? ""
            if line.hasPrefix("logfile ") {
                var path = line.dropFirst("logfile ".count)
                if path.first == "\"" && path.last == "\"" && path.count >= 2 { path = path.dropFirst().dropLast() }
                state.logPath = String(path)
            }
            guard line.hasPrefix("pcie_aer_inject_error ") else { return .success(#""""#) }
            return .success(Self.quoted(state.script.machine.injectError(commandLine: line)))
        default:
            return .commandNotFound(command.name)
        }
    }

    static func eventBytes(_ name: String, data: String?) -> [UInt8] {
        let now = WallClock.qmpTimestamp()
        let stamp = #"{"seconds": \#(now.seconds), "microseconds": \#(now.microseconds)}"#
        let text = #"{"timestamp": \#(stamp), "event": \#(quoted(name))\#(data.map { ", \"data\": \(normalized($0))" } ?? "")}"#
        return Array((text + "\r\n").utf8)
    }

    /// JSON text in QEMU's spacing; text that does not parse goes out as it is.
    private static func normalized(_ text: String) -> String {
        guard let value = try? JSON.parse(text) else { return text }
        return String(decoding: value.serialized(), as: UTF8.self)
    }

    private static func quoted(_ text: String) -> String {
        String(decoding: JSON.string(text).serialized(), as: UTF8.self)
    }
}
