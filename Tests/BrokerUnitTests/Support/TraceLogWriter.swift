import Glibc
import QMPBroker
import QMPWire

/// Appends to the broker's trace log as QEMU does: `O_APPEND`, one `write` per call.
struct TraceLogWriter {
    let path: String

    func append(_ text: String) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}

extension ScriptedRecovery {
    var traceLog: TraceLogWriter { TraceLogWriter(path: rig.configuration.traceLogPath ?? "") }

    /// Waits (bounded) until `query-broker` says guest link resets are watched.
    func waitForLinkResetWatch() throws -> Bool {
        let deadline = Deadline(after: 10)
        while !deadline.passed {
            try client.send(#"{"execute": "query-broker", "id": "watch"}"#)
            let reply = try client.nextReply().flatMap { try? JSON.parse($0) }
            if reply?["return"]?["vms"]?[0]?["link-reset-watch"]?.bool == true { return true }
        }
        return false
    }
}
