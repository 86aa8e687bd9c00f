import CEpoll
import Glibc

/// What a registered descriptor waits for.
package struct Interest: OptionSet, Sendable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    package static let read = Interest(rawValue: UInt32(EPOLLIN.rawValue))
    package static let write = Interest(rawValue: UInt32(EPOLLOUT.rawValue))
}

/// What epoll reported for a descriptor in one wakeup.
package struct Readiness: Sendable {
    package let events: UInt32

    package var readable: Bool { events & UInt32(EPOLLIN.rawValue) != 0 }
    package var writable: Bool { events & UInt32(EPOLLOUT.rawValue) != 0 }
    /// The peer hung up or the descriptor failed: a read or write tells which, so handlers
    /// treat this as "readable and writable" and let the syscall report it.
    package var hangup: Bool { events & UInt32(EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 }
}

/// Something the loop calls when its descriptor is ready. Handlers run on the loop's thread,
/// inline, and must not block.
package protocol ReadinessHandler: AnyObject {
    func ready(_ readiness: Readiness)
}
