import Glibc

/// A failed socket system call: which call (and on what path), and the `errno` it left.
public struct SocketError: Error, CustomStringConvertible {
    /// The call that failed, with its target where that helps, e.g. `connect(/run/vm.qmp)`.
    public let operation: String
    public let errno: Int32

    public init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// Captures the calling thread's current `errno`; call it right after the failing call.
    static func lastError(_ operation: String) -> SocketError {
        SocketError(operation: operation, errno: Glibc.errno)
    }

    /// `connect(/path): No such file or directory`
    public var description: String { "\(operation): \(Self.text(forErrno: errno))" }

    /// The C library's text for an errno value ("Broken pipe").
    static func text(forErrno code: Int32) -> String {
        String(cString: strerror(code))
    }
}
