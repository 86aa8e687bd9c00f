import Glibc

/// The socket directory is created like the state directory: missing parents too.
enum SocketDirectory {
    struct CreateError: Error, CustomStringConvertible {
        let path: String
        let errno: Int32
        var description: String { "\(path): \(String(cString: strerror(errno)))" }
    }

    static func create(_ path: String) throws(CreateError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/\(component)"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw CreateError(path: prefix, errno: errno) }
        }
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { throw CreateError(path: path, errno: ENOTDIR) }
    }
}
