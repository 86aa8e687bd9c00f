import Glibc

/// Writes text to a stream socket without SIGPIPE: a peer the broker already dropped
/// (a handshake timeout, a cut-off client) must fail this write, not kill the test process.
func sendText(_ text: String, to fd: Int32) {
    _ = Array(text.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
}
