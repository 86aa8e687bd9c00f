import EventLoop

/// A failed socket system call. `SystemCallError` under the name the routing code still
/// spells in its signatures.
public typealias SocketError = SystemCallError
