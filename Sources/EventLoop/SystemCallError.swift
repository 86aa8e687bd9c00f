import Glibc

/// A system call that failed, with its `errno`, worded the way `strerror(3)` words it.
/// The one errno error of every module: the loop's `epoll_ctl`, sockets, sysfs and VFIO.
public struct SystemCallError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was called, with its target where that helps, e.g. `connect(/run/vm.qmp)` or
    /// `open(/sys/bus/pci/devices/0000:3b:00.0/aer_dev_fatal)`.
    public let call: String
    public let errno: Int32

    package init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// Captures the calling thread's `errno`; call it right after the failing call.
    package static func last(_ call: String) -> SystemCallError {
        SystemCallError(call, errno: Glibc.errno)
    }

    /// `strerror(3)` text, e.g. "No such file or directory".
    package var reason: String { Self.reason(forErrno: errno) }

    /// The C library's text for an errno value ("Broken pipe").
    package static func reason(forErrno code: Int32) -> String { String(cString: strerror(code)) }

    /// `connect(/path): No such file or directory`
    public var description: String { "\(call): \(reason)" }
}
