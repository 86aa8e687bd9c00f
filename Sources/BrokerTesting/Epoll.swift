import Glibc

/// Just enough epoll for the scripted peers' loop. Swift's Glibc module does not export
/// <sys/epoll.h>, so the three calls are looked up once and `struct epoll_event` is laid
/// out by hand: packed (12 bytes) on x86_64, naturally aligned (16) elsewhere.
struct Epoll {
    let fd: Int32

    static let readable: UInt32 = 0x001  // EPOLLIN
    static let writable: UInt32 = 0x004  // EPOLLOUT
    private static let add: Int32 = 1, delete: Int32 = 2, modify: Int32 = 3
    #if arch(x86_64)
    static let eventSize = 12
    private static let dataOffset = 4
    #else
    static let eventSize = 16
    private static let dataOffset = 8
    #endif

    init() {
        fd = Self.create(Int32(O_CLOEXEC))
        precondition(fd >= 0, "epoll_create1: errno \(errno)")
    }

    /// Waits for `token`s to be ready (level-triggered); `interest` 0 keeps the descriptor
    /// registered but silent.
    func add(_ descriptor: Int32, token: UInt64, interest: UInt32 = readable) { control(Self.add, descriptor, token, interest) }
    func modify(_ descriptor: Int32, token: UInt64, interest: UInt32) { control(Self.modify, descriptor, token, interest) }
    func remove(_ descriptor: Int32) { control(Self.delete, descriptor, 0, 0) }

    private func control(_ operation: Int32, _ descriptor: Int32, _ token: UInt64, _ interest: UInt32) {
        withUnsafeTemporaryAllocation(byteCount: Self.eventSize, alignment: 8) { event in
            event.storeBytes(of: interest, toByteOffset: 0, as: UInt32.self)
            event.storeBytes(of: token, toByteOffset: Self.dataOffset, as: UInt64.self)
            _ = Self.control(fd, operation, descriptor, event.baseAddress!)
        }
    }

    /// The tokens and events of ready descriptors, at most `capacity`; [] on timeout or EINTR.
    func wait(capacity: Int, timeoutMilliseconds: Int32) -> [(token: UInt64, events: UInt32)] {
        withUnsafeTemporaryAllocation(byteCount: Self.eventSize * capacity, alignment: 8) { events in
            let count = Self.wait(fd, events.baseAddress!, Int32(capacity), timeoutMilliseconds)
            guard count > 0 else { return [] }
            return (0..<Int(count)).map {
                (events.loadUnaligned(fromByteOffset: $0 * Self.eventSize + Self.dataOffset, as: UInt64.self),
                 events.loadUnaligned(fromByteOffset: $0 * Self.eventSize, as: UInt32.self))
            }
        }
    }

    private static func symbol<Function>(_ name: String, as type: Function.Type) -> Function {
        guard let address = dlsym(nil, name) else { fatalError("libc has no \(name)") }
        return unsafeBitCast(address, to: type)
    }

    private static let create = symbol("epoll_create1", as: (@convention(c) (Int32) -> Int32).self)
    private static let control = symbol(
        "epoll_ctl", as: (@convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer) -> Int32).self)
    private static let wait = symbol(
        "epoll_wait", as: (@convention(c) (Int32, UnsafeMutableRawPointer, Int32, Int32) -> Int32).self)
}
