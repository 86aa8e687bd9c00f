import CEpoll
import Glibc

/// What a registered descriptor waits for.
public struct Interest: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let read = Interest(rawValue: UInt32(EPOLLIN.rawValue))
    public static let write = Interest(rawValue: UInt32(EPOLLOUT.rawValue))
}

/// What epoll reported for a descriptor in one wakeup.
public struct Readiness: Sendable {
    public let events: UInt32

    public var readable: Bool { events & UInt32(EPOLLIN.rawValue) != 0 }
    public var writable: Bool { events & UInt32(EPOLLOUT.rawValue) != 0 }
    /// The peer hung up or the descriptor failed: a read or write tells which, so handlers
    /// treat this as "readable and writable" and let the syscall report it.
    public var hangup: Bool { events & UInt32(EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 }
}

/// Something the loop calls when its descriptor is ready. Handlers run on the loop's thread,
/// inline, and must not block.
public protocol ReadinessHandler: AnyObject {
    func ready(_ readiness: Readiness)
}
