import EventLoop
import VFIOWatch
import Glibc

/// Which process is the VMM: the configured pid file's (when the QMP socket was created by
/// another process, as a launcher that passes QEMU a listening socket does), else the
/// SO_PEERCRED of the upstream socket (the process that listened on it).
struct VMMProcess {
    /// The configured pid file, if any.
    let pidFile: String?
    /// SO_PEERCRED's pid of the upstream connection.
    let peer: pid_t?

    /// The VMM's pid now (the pid file is read each time: a launcher may rewrite it).
    var pid: pid_t? { Self.pid(pidFile: pidFile, peer: peer) }

    static func pid(pidFile: String?, peer: pid_t?) -> pid_t? {
        guard let pidFile else { return peer }
        guard let text = PathReader.read(pidFile), let pid = pid_t(text.filter(\.isNumber)), pid > 0 else { return nil }
        return pid
    }

    /// Whether the process has the file `device`/`inode` open; nil when its descriptors
    /// cannot be read (no ptrace-read rights, or the process is gone), or it is the broker's
    /// own process (an in-process peer), whose descriptors include the broker's reader.
    static func holdsFile(_ pid: pid_t, device: UInt64, inode: UInt64) -> Bool? {
        guard pid != getpid() else { return nil }
        let directory = "/proc/\(pid)/fd"
        guard let names = DirectoryListing.names(directory) else { return nil }
        for name in names {
            var status = stat()
            if stat("\(directory)/\(name)", &status) == 0, UInt64(status.st_dev) == device, UInt64(status.st_ino) == inode {
                return true
            }
        }
        return false
    }

    /// The process's effective uid and gid (the second field of `Uid:` and `Gid:` in
    /// `/proc/PID/status`; `/proc/PID` itself is root's when the process is not dumpable).
    static func owner(of pid: pid_t) -> (uid: uid_t, gid: gid_t)? {
        guard let status = PathReader.read("/proc/\(pid)/status") else { return nil }
        func effective(_ key: String) -> UInt32? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
            let fields = line.dropFirst(key.count).split(whereSeparator: { $0 == "\t" || $0 == " " })
            return fields.count > 1 ? UInt32(fields[1]) : nil
        }
        guard let uid = effective("Uid:"), let gid = effective("Gid:") else { return nil }
        return (uid, gid)
    }
}
