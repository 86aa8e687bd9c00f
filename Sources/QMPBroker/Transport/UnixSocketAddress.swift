import EventLoop
import Glibc

/// The `sockaddr_un` of a filesystem path, for every unix socket call of the broker, its
/// tools and tests: stream and datagram, bind, connect and sendto.
package enum UnixSocketAddress {
    /// Runs `body` with a `sockaddr_un` for `path`, or fails with ENAMETOOLONG when the path
    /// does not fit (108 bytes including the terminating NUL).
    package static func with<Result>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result
    ) throws(SystemCallError) -> Result {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let utf8 = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !utf8.isEmpty, utf8.count < capacity else {
            throw SystemCallError("socket address(\(path))", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { sunPath in
            sunPath.copyBytes(from: utf8)
            sunPath[utf8.count] = 0
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
