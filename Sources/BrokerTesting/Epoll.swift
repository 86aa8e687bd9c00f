import CEpoll
import Glibc

/// Just enough epoll for the scripted peers' loop, which runs on a thread of its own so
/// that a peer and the broker under test never share a loop.
struct Epoll {
    let fd: Int32

    static let readable = UInt32(EPOLLIN.rawValue)
    static let writable = UInt32(EPOLLOUT.rawValue)

    init() {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(fd >= 0, "epoll_create1: errno \(errno)")
    }

    /// Waits for `token`s to be ready (level-triggered); `interest` 0 keeps the descriptor
    /// registered but silent.
    func add(_ descriptor: Int32, token: UInt64, interest: UInt32 = readable) { control(EPOLL_CTL_ADD, descriptor, token, interest) }
    func modify(_ descriptor: Int32, token: UInt64, interest: UInt32) { control(EPOLL_CTL_MOD, descriptor, token, interest) }
    func remove(_ descriptor: Int32) { control(EPOLL_CTL_DEL, descriptor, 0, 0) }

    private func control(_ operation: Int32, _ descriptor: Int32, _ token: UInt64, _ interest: UInt32) {
        var event = epoll_event(events: interest, data: epoll_data_t(u64: token))
        _ = epoll_ctl(fd, operation, descriptor, &event)
    }

    /// The tokens and events of ready descriptors, at most `capacity`; [] on timeout or EINTR.
    func wait(capacity: Int, timeoutMilliseconds: Int32) -> [(token: UInt64, events: UInt32)] {
        withUnsafeTemporaryAllocation(of: epoll_event.self, capacity: capacity) { events in
            let count = epoll_wait(fd, events.baseAddress!, Int32(capacity), timeoutMilliseconds)
            guard count > 0 else { return [] }
            return (0..<Int(count)).map { (events[$0].data.u64, events[$0].events) }
        }
    }
}
