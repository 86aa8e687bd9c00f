import EventLoop
import Glibc

/// The blocking connect of tools and tests (`QMPClient`, `QMPLineConnection`,
/// `QTestConnection`): the server at the path may still be starting, so a refused or
/// missing socket is tried again until the timeout.
package enum BlockingConnect {
    /// A blocking, close-on-exec unix stream socket connected to `path`. Retries every
    /// `interval` seconds until `timeout` seconds pass, then throws the last failure.
    package static func unixSocket(_ path: String, timeout: Double, interval: Double = 0.01) throws(SystemCallError) -> Int32 {
        let deadline = Deadline(after: timeout)
        while true {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .last("socket(\(path))") }
            let connected: Int32
            do {
                connected = try UnixSocketAddress.with(path) { Glibc.connect(fd, $0, $1) }
            } catch {
                Glibc.close(fd)
                throw error
            }
            if connected == 0 { return fd }
            let failure = SystemCallError.last("connect(\(path))")
            Glibc.close(fd)
            guard !deadline.passed else { throw failure }
            usleep(useconds_t(interval * 1_000_000))
        }
    }
}
