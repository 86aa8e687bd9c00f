import Glibc
import QMPBroker

/// A blocking QMP connection that keeps the peer's lines as bytes, for tests that check
/// exactly what went over the wire (QMPClient parses). Every wait is bounded.
package final class QMPLineConnection {
    package let fd: Int32
    private var pending: [UInt8] = []
    /// Lines set aside by `nextEvent`/`nextReply` while looking for another kind.
    private var setAside: [String] = []

    /// Connects to `path`, retrying until `timeout` seconds pass (the server may be starting).
    package init(path: String, timeout: Double = 10) throws {
        do {
            fd = try BlockingConnect.unixSocket(path, timeout: timeout, interval: 0.002)
        } catch {
            throw QMPClient.Failure(error.description)
        }
    }

    /// Takes over a connected stream socket (one end of a socketpair).
    package init(adopting fd: Int32) { self.fd = fd }

    deinit { Glibc.close(fd) }

    /// Sends text, with `fds` attached by SCM_RIGHTS when given.
    package func send(_ text: String, fds: [Int32] = []) throws {
        let bytes = Array(text.utf8)
        let space = fds.isEmpty ? 0 : MemoryLayout<cmsghdr>.size + fds.count * 4
        let sent = bytes.withUnsafeBytes { raw in
            withUnsafeTemporaryAllocation(byteCount: max(space, 8), alignment: 8) { control in
                var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    if !fds.isEmpty {
                        control.initializeMemory(as: UInt8.self, repeating: 0)
                        var header = cmsghdr()
                        header.cmsg_len = space
                        header.cmsg_level = SOL_SOCKET
                        header.cmsg_type = Int32(SCM_RIGHTS)
                        control.storeBytes(of: header, as: cmsghdr.self)
                        for (index, fd) in fds.enumerated() {
                            control.storeBytes(of: fd, toByteOffset: MemoryLayout<cmsghdr>.size + index * 4, as: Int32.self)
                        }
                        message.msg_control = control.baseAddress
                        message.msg_controllen = space
                    }
                    return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
                }
            }
        }
        guard sent == bytes.count else { throw QMPClient.Failure("send: \(sent) of \(bytes.count) bytes") }
    }

    /// The next line without its `\r\n`, or nil when `timeout` passes first. Throws at EOF.
    package func nextLine(timeout: Double = 10) throws -> String? {
        if !setAside.isEmpty { return setAside.removeFirst() }
        return try readLine(timeout: timeout)
    }

    /// The next line that is not an event (events met on the way are kept for `nextEvent`).
    package func nextReply(timeout: Double = 10) throws -> String? {
        try next(timeout: timeout) { !Self.isEvent($0) }
    }

    /// The next event named `name` (other lines met on the way are kept).
    package func nextEvent(_ name: String, timeout: Double = 10) throws -> String? {
        try next(timeout: timeout) { Self.isEvent($0) && $0.contains(#""event": "\#(name)""#) }
    }

    /// Reads until the peer closes; true if it did within `timeout`.
    package func waitForClose(timeout: Double = 10) -> Bool {
        let deadline = Deadline(after: timeout)
        while !deadline.passed {
            do { _ = try readLine(timeout: deadline.remaining) } catch { return true }
        }
        return false
    }

    private func next(timeout: Double, matching: (String) -> Bool) throws -> String? {
        if let index = setAside.firstIndex(where: matching) { return setAside.remove(at: index) }
        let deadline = Deadline(after: timeout)
        while let line = try readLine(timeout: deadline.remaining) {
            if matching(line) { return line }
            setAside.append(line)
        }
        return nil
    }

    private static func isEvent(_ line: String) -> Bool { line.hasPrefix(#"{"timestamp": "#) }

    private func readLine(timeout: Double) throws -> String? {
        let deadline = Deadline(after: timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = pending.firstIndex(of: 10) {
                var line = Array(pending[..<end])
                pending.removeSubrange(...end)
                if line.last == 13 { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(deadline.remaining * 1000))
            if ready == 0 { return nil }
            if ready < 0 { if errno == EINTR { continue }; throw QMPClient.Failure("poll: errno \(errno)") }
            let count = read(fd, &buffer, buffer.count)
            if count == 0 { throw QMPClient.Failure("connection closed by peer") }
            if count < 0 { if errno == EINTR { continue }; throw QMPClient.Failure("read: errno \(errno)") }
            pending += buffer[..<count]
        }
    }
}
