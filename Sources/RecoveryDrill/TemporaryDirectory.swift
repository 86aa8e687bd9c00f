import EventLoop
import Glibc
import QMPBroker
import VFIOWatch

/// A private directory under /tmp for the demo, the benchmarks and the tests; removed with
/// everything in it by `remove()` or when the value goes away. Unix socket paths must stay
/// under 108 bytes, so the name is short.
/// `@unchecked Sendable`: the path is immutable after init and removal is idempotent, so
/// sharing it with the threads of a test is safe.
package final class TemporaryDirectory: @unchecked Sendable {
    package let path: String
    private var removed = false

    package init(prefix: String = "qmpb") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw QMPClient.Failure("cannot create a directory under /tmp: \(String(cString: strerror(errno)))")
        }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { remove() }

    package func remove() {
        guard !removed else { return }
        removed = true
        Self.removeTree(path)
    }

    /// Removes `path` and everything under it, children first; symlinks are removed, not followed.
    private static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            unlink(path)
            return
        }
        for name in DirectoryListing.names(path) ?? [] { removeTree("\(path)/\(name)") }
        rmdir(path)
    }

    package func file(_ name: String) -> String { "\(path)/\(name)" }

    package func write(_ name: String, _ text: String) {
        guard let file = fopen(self.file(name), "w") else { return }
        fputs(text, file)
        fclose(file)
    }

    /// A file's text, or "" when it cannot be read.
    package func read(_ name: String) -> String { PathReader.read(file(name)) ?? "" }
}
