import EventLoop
import Glibc

/// Reads a small file (a sysfs attribute) with plain open/read/close.
///
/// Sysfs attributes are at most a page and are formatted by the kernel on read, so this
/// never blocks for long; it is cheap enough for the event loop and needs no Foundation.
enum SmallFileReader {
    /// Larger files are cut here: a sysfs attribute is at most one page.
    static let limit = 64 * 1024

    static func read(_ path: String) -> Result<[UInt8], SystemCallError> {
        let fd = retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY) }
        guard fd >= 0 else { return .failure(.last("open(\(path))")) }
        defer { close(fd) }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { buffer in
                retryingOnInterrupt { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            }
            if count < 0 { return .failure(.last("read(\(path))")) }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return .success(bytes)
    }
}

/// Repeats a system call that was interrupted by a signal before doing anything.
func retryingOnInterrupt<Result: BinaryInteger>(_ call: () -> Result) -> Result {
    while true {
        let result = call()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}
