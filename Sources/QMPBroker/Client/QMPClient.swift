import Glibc
import QMPWire

/// A small blocking QMP client for tools and tests (`qmp-broker events`, the demo,
/// the integration suite): connect, read the greeting, negotiate, run commands,
/// collect events. Every wait is bounded. Not for use on a broker event loop.
package final class QMPClient {
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
        package init(_ description: String) { self.description = description }
    }

    package let fd: Int32
    package private(set) var greeting: JSON?
    private var reader = QMPInputReader()
    private var inbox: [JSON] = []
    /// Events seen while waiting for replies, oldest first.
    package private(set) var events: [JSON] = []

    /// Connects to a unix socket, retrying until `timeout` seconds pass (the server may still be starting).
    package init(path: String, timeout: Double = 10, readGreeting: Bool = true) throws {
        do {
            fd = try BlockingConnect.unixSocket(path, timeout: timeout)
        } catch {
            throw Failure(error.description)
        }
        if readGreeting {
            guard let greeting = try readMessage(timeout: timeout), greeting["QMP"] != nil else {
                throw Failure("no QMP greeting from \(path)")
            }
            self.greeting = greeting
        }
    }

    deinit { Glibc.close(fd) }

    /// `qmp_capabilities`, optionally enabling `oob`.
    package func negotiate(oob: Bool = false) throws {
        let arguments: JSON? = oob ? .object(["enable": .strings(["oob"])]) : nil
        let reply = try execute("qmp_capabilities", arguments: arguments)
        guard reply["return"] != nil else { throw Failure("negotiation failed: \(reply)") }
    }

    /// Runs a command and returns the whole reply message (`return` or `error`).
    package func execute(_ command: String, arguments: JSON? = nil, id: JSON? = nil, fds: [Int32] = [],
                        timeout: Double = 30) throws -> JSON {
        let message = JSON.object(["execute": .string(command)])
        if let arguments { message["arguments"] = arguments }
        if let id { message["id"] = id }
        try send(message.serialized(), fds: fds)
        return try nextReply(timeout: timeout)
    }

    /// Sends raw bytes (any text, valid or not), with descriptors by SCM_RIGHTS when given.
    package func send(_ bytes: [UInt8], fds: [Int32] = []) throws {
        var offset = 0
        var pendingFDs = fds
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { chunk in
                StreamSocketCalls.send(fd, chunk, fds: pendingFDs)
            }
            guard sent > 0 else { throw Failure("send: \(String(cString: strerror(errno)))") }
            pendingFDs = []
            offset += sent
        }
    }

    package func send(_ text: String, fds: [Int32] = []) throws { try send(Array(text.utf8), fds: fds) }

    /// The next reply (not an event); events met on the way are kept in `events`.
    package func nextReply(timeout: Double = 30) throws -> JSON {
        let deadline = Deadline(after: timeout)
        while true {
            guard let message = try readMessage(timeout: deadline.remaining) else {
                throw Failure("no reply within \(timeout) s")
            }
            if message["event"] != nil { events.append(message) } else { return message }
        }
    }

    /// The next event named `name` (any event when nil), from those already seen or arriving.
    package func nextEvent(_ name: String? = nil, timeout: Double = 10) throws -> JSON? {
        if let index = events.firstIndex(where: { name == nil || $0["event"]?.string == name }) {
            return events.remove(at: index)
        }
        let deadline = Deadline(after: timeout)
        // Replies met on the way wait for `nextReply`; set aside meanwhile so that reading
        // goes on past them instead of handing the same reply back again.
        var replies: [JSON] = []
        defer { inbox.insert(contentsOf: replies, at: 0) }
        while !deadline.passed {
            guard let message = try readMessage(timeout: deadline.remaining) else { return nil }
            if message["event"] == nil { replies.append(message); continue }
            if name == nil || message["event"]?.string == name { return message }
            events.append(message)
        }
        return nil
    }

    /// The next message of any kind, or nil when `timeout` passes first. Throws on EOF.
    package func readMessage(timeout: Double) throws -> JSON? {
        if !inbox.isEmpty { return inbox.removeFirst() }
        let deadline = Deadline(after: timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while inbox.isEmpty {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(0, deadline.remaining) * 1000))
            if ready == 0 { return nil }
            if ready < 0 { if errno == EINTR { continue }; throw Failure("poll: \(String(cString: strerror(errno)))") }
            let count = read(fd, &buffer, buffer.count)
            if count == 0 { throw Failure("connection closed by peer") }
            if count < 0 { if errno == EINTR || errno == EAGAIN { continue }; throw Failure("read: \(String(cString: strerror(errno)))") }
            buffer.withUnsafeBytes { bytes in
                reader.feed(UnsafeRawBufferPointer(rebasing: bytes[..<count])) { input in
                    switch input {
                    case .value(let value): inbox.append(value)
                    case .error(let desc): inbox.append(QMPError(desc).reply(id: nil))
                    }
                }
            }
        }
        return inbox.removeFirst()
    }

    /// True once the peer has closed the connection (reads EOF within `timeout`).
    package func waitForClose(timeout: Double) -> Bool {
        let deadline = Deadline(after: timeout)
        while !deadline.passed {
            do { _ = try readMessage(timeout: deadline.remaining) } catch { return true }
        }
        return false
    }
}

