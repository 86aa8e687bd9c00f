import EventLoop
import Glibc

/// Reads what sits at a path with plain libc calls: small files (sysfs attributes,
/// `/proc` files, configs, logs), symbolic links and directory listings.
///
/// Sysfs attributes are at most a page and are formatted by the kernel on read, so a read
/// never blocks for long; it is cheap enough for the event loop and needs no Foundation.
package enum PathReader {
    /// A sysfs attribute is at most one page: larger files are cut here.
    package static let attributeLimit = 64 * 1024

    /// The file's bytes, at most about `limit` of them (whole chunks of 4 KiB).
    package static func bytes(_ path: String, limit: Int = .max) -> Result<[UInt8], SystemCallError> {
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

    /// The whole file as text; nil when it cannot be opened or read.
    package static func read(_ path: String) -> String? {
        guard case .success(let bytes) = bytes(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The link's target text, as `readlink(2)` returns it (not resolved).
    package static func readLink(_ path: String) -> Result<String, SystemCallError> {
        // PATH_MAX: sysfs and /proc links are far shorter, a longer one is cut.
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let length = buffer.withUnsafeMutableBytes { bytes in
            readlink(path, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard length >= 0 else { return .failure(.last("readlink(\(path))")) }
        return .success(String(decoding: buffer[..<length], as: UTF8.self))
    }

    /// The names in a directory, without `.` and `..`, in the order the kernel lists them.
    package static func entries(of path: String) -> Result<[String], SystemCallError> {
        guard let names = DirectoryListing.names(path) else { return .failure(.last("opendir(\(path))")) }
        return .success(names)
    }
}
