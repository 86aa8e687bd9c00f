import EventLoop
import Glibc

/// Why a `UnixStreamConnection` closed; handed to `onClose` exactly once.
package enum ConnectionCloseReason: Sendable, Equatable, CustomStringConvertible {
    /// The peer went away: end of file, or EPIPE/ECONNRESET, which on a unix socket only
    /// mean the peer closed first (with data still unread on one side).
    case peerClosed
    /// A socket call failed with this errno.
    case error(Int32)
    /// The peer stopped reading and the output queue hit its bound.
    case outputOverflow
    /// `close()` was called on this side.
    case local

    package var description: String {
        switch self {
        case .peerClosed: return "peer closed"
        case .error(let code): return "socket error: \(SystemCallError.reason(forErrno: code))"
        case .outputOverflow: return "output queue overflow"
        case .local: return "closed locally"
        }
    }
}
