import Glibc
import QMPSessions
import QMPWire

/// What a part of the VM may ask of the VMM's monitor, and nothing else: the VM makes it
/// over its upstream link, so the part needs no pointer back to the VM.
struct CommandSink {
    /// Sends one of the broker's own commands; the reply goes to the continuation, or (with
    /// none) to whoever handles `purpose` in the VM. Returns the id it went out with (nil
    /// when the VMM is not connected).
    let execute: (_ command: String, _ arguments: JSON?, _ purpose: BrokerPurpose,
                  _ continuation: UpstreamLink.ReplyHandler?) -> Int64?
    /// Whether the VMM is attached and negotiated.
    let isReady: () -> Bool
    /// The VMM's process (`VMMProcess.pid`), nil when not attached.
    let vmmPID: () -> pid_t?

    @discardableResult
    func execute(_ command: String, arguments: JSON? = nil, for purpose: BrokerPurpose,
                 then continuation: UpstreamLink.ReplyHandler? = nil) -> Int64? {
        execute(command, arguments, purpose, continuation)
    }
}

/// Sends one of the broker's own events to the VM's clients.
struct EventSink {
    let emit: (_ name: String, _ data: JSON?) -> Void

    func emit(_ name: String, data: JSON?) { emit(name, data) }
}

/// Which process is the VMM: the configured pid file's (when the QMP socket was created by
/// another process, as a launcher that passes QEMU a listening socket does), else the
/// SO_PEERCRED of the upstream socket (the process that listened on it).
enum VMMProcess {
    static func pid(pidFile: String?, peer: pid_t?) -> pid_t? {
        guard let pidFile else { return peer }
        let fd = open(pidFile, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0, let pid = pid_t(String(decoding: bytes[..<count], as: UTF8.self).filter(\.isNumber)), pid > 0
        else { return nil }
        return pid
    }

    /// The process's effective uid and gid (the second field of `Uid:` and `Gid:` in
    /// `/proc/PID/status`; `/proc/PID` itself is root's when the process is not dumpable).
    static func owner(of pid: pid_t) -> (uid: uid_t, gid: gid_t)? {
        guard let status = TextFile.read("/proc/\(pid)/status") else { return nil }
        func effective(_ key: String) -> UInt32? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
            let fields = line.dropFirst(key.count).split(whereSeparator: { $0 == "\t" || $0 == " " })
            return fields.count > 1 ? UInt32(fields[1]) : nil
        }
        guard let uid = effective("Uid:"), let gid = effective("Gid:") else { return nil }
        return (uid, gid)
    }
}
