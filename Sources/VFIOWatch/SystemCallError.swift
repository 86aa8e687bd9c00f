import Glibc

/// A system call that failed, with its `errno`, worded the way `strerror(3)` words it.
public struct SystemCallError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was called, e.g. `open(/sys/bus/pci/devices/0000:3b:00.0/aer_dev_fatal)`.
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// Captures the calling thread's `errno`; call it right after the failing call.
    static func last(_ call: String) -> SystemCallError {
        SystemCallError(call, errno: Glibc.errno)
    }

    /// `strerror(3)` text, e.g. "No such file or directory".
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(call): \(reason)" }
}
