import EventLoop
import Glibc

/// Reads symbolic links and directory listings (of `/proc` and sysfs) with plain libc calls.
enum PathReader {
    /// The link's target text, as `readlink(2)` returns it (not resolved).
    static func readLink(_ path: String) -> Result<String, SystemCallError> {
        // PATH_MAX: sysfs and /proc links are far shorter, a longer one is cut.
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let length = buffer.withUnsafeMutableBytes { bytes in
            readlink(path, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard length >= 0 else { return .failure(.last("readlink(\(path))")) }
        return .success(String(decoding: buffer[..<length], as: UTF8.self))
    }

    /// The names in a directory, without `.` and `..`, in the order the kernel lists them.
    static func entries(of path: String) -> Result<[String], SystemCallError> {
        guard let directory = opendir(path) else { return .failure(.last("opendir(\(path))")) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return .success(names)
    }
}
