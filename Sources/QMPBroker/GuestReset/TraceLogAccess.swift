import Glibc
import Logging

/// QEMU opens the trace log itself: a VMM running as another user needs the file to be
/// its own (`trace-log-owner`) or open to its group (`trace-log-mode`).
enum TraceLogAccess {
    static func apply(to fd: Int32, path: String, configuration: VMConfiguration, logger: Logger) {
        if let owner = configuration.traceLogOwner, fchown(fd, owner.uid, owner.gid) != 0 {
            logger.warning("cannot set the trace log's owner", metadata: [
                "path": "\(path)", "uid": "\(owner.uid)", "gid": "\(owner.gid)", "error": "\(String(cString: strerror(errno)))"])
        }
        if fchmod(fd, mode_t(configuration.traceLogMode)) != 0 {
            logger.warning("cannot set the trace log's mode", metadata: [
                "path": "\(path)", "mode": "\(String(configuration.traceLogMode, radix: 8))", "error": "\(String(cString: strerror(errno)))"])
        }
    }
}
