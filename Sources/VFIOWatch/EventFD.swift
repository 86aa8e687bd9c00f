import EventLoop
import Glibc

/// Helpers for Linux eventfds.
///
/// An eventfd is a 64-bit counter behind a file descriptor: each write adds to it, a
/// read returns the sum and resets it to zero. Reading after many signals therefore
/// returns all of them at once (they coalesce), and reading when it is zero blocks,
/// or fails with EAGAIN when the fd is non-blocking.
package enum EventFD {
    /// The `readlink` text of an eventfd in `/proc/self/fd` (fs/eventfd.c names its
    /// anon inode `[eventfd]`).
    static let procLinkText = "anon_inode:[eventfd]"

    /// Checks that `fd` is an open eventfd.
    ///
    /// `fstat` tells closed from open and rules out pipes, sockets, directories and
    /// devices; the `/proc/self/fd` link tells an eventfd from other anon inodes and from
    /// regular files (whose link is an absolute path, so a file named like the link
    /// text cannot pass).
    package static func validate(_ fd: Int32) throws(EventFDError) {
        guard fd >= 0 else { throw .notOpen(fd: fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let error = SystemCallError.last("fstat(\(fd))")
            throw error.errno == EBADF ? .notOpen(fd: fd) : .systemCall(error)
        }
        // Anon inodes have no file type bits (older kernels) or S_IFREG (newer ones).
        let kind = status.st_mode & S_IFMT
        guard kind == 0 || kind == S_IFREG else { throw .notAnEventFD(fd: fd) }

        let link: String
        switch PathReader.readLink("/proc/self/fd/\(fd)") {
        case .success(let text): link = text
        // The fd was closed under us: ENOENT. /proc missing or hidden: anything else.
        case .failure(let error): throw error.errno == ENOENT ? .notOpen(fd: fd) : .cannotInspect(fd: fd, error)
        }
        guard link == procLinkText else { throw .notAnEventFD(fd: fd) }
    }

    /// True when `fd` is an open eventfd.
    package static func isEventFD(_ fd: Int32) -> Bool {
        do {
            try validate(fd)
            return true
        } catch {
            return false
        }
    }

    /// Sets O_NONBLOCK, so that `drain` never blocks.
    ///
    /// The flag belongs to the open file description: a process sharing it (the VMM that
    /// passed the fd) sees it too. QEMU's own eventfds are non-blocking already.
    package static func setNonBlocking(_ fd: Int32) throws(EventFDError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw .systemCall(.last("fcntl(\(fd), F_GETFL)")) }
        if flags & O_NONBLOCK != 0 { return }
        guard fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw .systemCall(.last("fcntl(\(fd), F_SETFL, O_NONBLOCK)"))
        }
    }

    /// Reads and resets the counter: how many times it was signalled since the last
    /// drain. Nil when it was zero (EAGAIN). The fd must be non-blocking.
    package static func drain(_ fd: Int32) throws(EventFDError) -> UInt64? {
        var value: UInt64 = 0
        let count = withUnsafeMutableBytes(of: &value) { buffer in
            retryingOnInterrupt { read(fd, buffer.baseAddress, buffer.count) }
        }
        if count == MemoryLayout<UInt64>.size { return value }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return nil }
        if count < 0 { throw .systemCall(.last("read(\(fd))")) }
        throw .systemCall(SystemCallError("read(\(fd)) returned \(count) bytes", errno: EIO))
    }

    /// Adds `value` to the counter, as the kernel or a VMM does when it signals.
    package static func signal(_ fd: Int32, adding value: UInt64 = 1) throws(EventFDError) {
        var value = value
        let count = withUnsafeBytes(of: &value) { buffer in
            retryingOnInterrupt { write(fd, buffer.baseAddress, buffer.count) }
        }
        guard count == MemoryLayout<UInt64>.size else { throw .systemCall(.last("write(\(fd))")) }
    }

    /// A new non-blocking, close-on-exec eventfd (for tests and drills; the VMM makes
    /// the real ones). The caller owns it.
    package static func makeEventFD(initialValue: UInt32 = 0) throws(EventFDError) -> Int32 {
        // Glibc's Swift module does not include <sys/eventfd.h>; the function is in libc.
        guard let symbol = dlsym(nil, "eventfd") else {
            throw .systemCall(SystemCallError("dlsym(eventfd)", errno: ENOSYS))
        }
        typealias EventFDFunction = @convention(c) (UInt32, Int32) -> Int32
        let eventfd = unsafeBitCast(symbol, to: EventFDFunction.self)
        // EFD_CLOEXEC and EFD_NONBLOCK are defined as O_CLOEXEC and O_NONBLOCK.
        let fd = eventfd(initialValue, O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .systemCall(.last("eventfd")) }
        return fd
    }
}
