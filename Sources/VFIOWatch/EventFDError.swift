import EventLoop

/// Why a file descriptor cannot be used as an eventfd, or an eventfd operation failed.
///
/// `description` is written for a QMP `GenericError` `desc` (no fd number: a number the
/// broker received over SCM_RIGHTS means nothing to the client); the fd is in the case
/// for logs.
package enum EventFDError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Closed, or never opened.
    case notOpen(fd: Int32)
    /// Open, but something else: a pipe, a socket, a regular file, another anon inode.
    case notAnEventFD(fd: Int32)
    /// `/proc/self/fd` could not be read, so the fd's kind cannot be checked.
    case cannotInspect(fd: Int32, SystemCallError)
    /// A system call on the eventfd failed.
    case systemCall(SystemCallError)

    package var description: String {
        switch self {
        case .notOpen: "File descriptor is not open"
        case .notAnEventFD: "File descriptor is not an eventfd"
        case .cannotInspect(_, let error): "Cannot check that the file descriptor is an eventfd: \(error.reason)"
        case .systemCall(let error): "eventfd \(error)"
        }
    }
}
