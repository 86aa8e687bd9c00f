import EventLoop
import Glibc
import QMPBroker
import QMPWire

/// The socket side of `ScriptedVMM`: accepting, reading with SCM_RIGHTS, writing. Reads
/// run on the group's thread; writes come from there and from callers, serialised by `link`.
extension ScriptedVMM {
    static func listeningSocket(at path: String) throws(Failure) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        unlink(path)
        let bound: Int32
        do {
            bound = try UnixSocketAddress.with(path) { bind(fd, $0, $1) }
        } catch {
            if fd >= 0 { Glibc.close(fd) }
            throw Failure(description: "path too long: \(path)")
        }
        guard fd >= 0, bound == 0, Glibc.listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { Glibc.close(fd) }
            throw Failure(description: "cannot listen on \(path): \(reason)")
        }
        return fd
    }

    /// The listener is readable: take the next connection and greet it.
    func acceptReady() {
        link.withLock { link in
            guard !link.closed, link.fd < 0 else { return }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            group.setAccepting(listener, token: listenerToken, false)
            start(fd, &link)
        }
    }

    func adopt(_ fd: Int32) {
        link.withLock { start(fd, &$0) }
    }

    private func start(_ fd: Int32, _ link: inout Link) {
        link.fd = fd
        link.number += 1
        link.token = group.makeToken()
        link.reader = QMPInputReader()
        let greeting = state.withLock { state in
            state.connections += 1
            return state.script.greeting
        }
        group.register(fd, token: link.token, self, .connection)
        if let greeting { queue(Array(greeting.utf8), &link) }
    }

    /// The connection is readable: log what completed, then answer it.
    func readReady(token: UInt64, buffer: UnsafeMutableRawBufferPointer, control: UnsafeMutableRawBufferPointer) {
        let arrived: [ReceivedCommand] = link.withLock { link in
            guard link.token == token, link.fd >= 0 else { return [] }
            let (count, fds) = Self.receive(link.fd, into: buffer, control: control)
            let now = MonotonicClock.nanoseconds()
            if count < 0 && (errno == EINTR || errno == EAGAIN) { return [] }
            guard count > 0 else {
                dropConnection(&link)
                return []
            }
            link.descriptors += fds
            link.unclaimedDescriptors += fds
            var requests: [JSON] = []
            link.reader.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count])) { input in
                if case .value(let value) = input { requests.append(value) }
            }
            let number = link.number
            let commands = requests.map { request in
                let name = request["execute"]?.string ?? request["exec-oob"]?.string ?? ""
                // As QEMU's chardev: received descriptors wait for the command that takes
                // them, not for whichever command came first in the same read.
                var descriptors: [Int32] = []
                if Self.commandsTakingDescriptors.contains(name) {
                    descriptors = link.unclaimedDescriptors
                    link.unclaimedDescriptors = []
                }
                return ReceivedCommand(name: name,
                                       id: request["id"].map { String(decoding: $0.serialized(), as: UTF8.self) },
                                       arguments: request["arguments"].map { String(decoding: $0.serialized(), as: UTF8.self) },
                                       receivedAt: now, descriptors: descriptors, connection: number)
            }
            state.withLock { $0.received += commands }
            return commands
        }
        for command in arrived {
            for output in answer(command) {
                if let due = output.due {
                    group.schedule(.init(due: due, vmm: self, connection: command.connection, bytes: output.bytes))
                } else {
                    send(output.bytes, onConnection: command.connection)
                }
            }
        }
    }

    /// Closes the current connection (under `link`) and accepts the next one.
    func dropConnection(_ link: inout Link) {
        guard link.fd >= 0 else { return }
        group.unregister(link.fd, token: link.token)
        Glibc.close(link.fd)
        link.fd = -1
        link.token = 0
        link.output = []
        link.waitingToWrite = false
        link.unclaimedDescriptors = []
        if listener >= 0 && !link.closed { group.setAccepting(listener, token: listenerToken, true) }
    }

    /// Writes to connection `number` if it is still the current one.
    func send(_ bytes: [UInt8], onConnection number: Int) {
        link.withLock { link in
            guard link.number == number else { return }
            queue(bytes, &link)
        }
    }

    func sendOnCurrentConnection(_ bytes: [UInt8]) {
        link.withLock { queue(bytes, &$0) }
    }

    /// The socket is writable again: send what waited.
    func writeReady(token: UInt64) {
        link.withLock { link in
            guard link.token == token, link.fd >= 0 else { return }
            flush(&link)
        }
    }

    /// Sends now what the socket takes without blocking; the rest waits for EPOLLOUT, in order.
    private func queue(_ bytes: [UInt8], _ link: inout Link) {
        guard link.fd >= 0 else { return }
        link.output += bytes
        flush(&link)
    }

    private func flush(_ link: inout Link) {
        var offset = 0
        var blocked = false
        link.output.withUnsafeBytes { raw in
            while offset < raw.count {
                let count = Glibc.send(link.fd, raw.baseAddress! + offset, raw.count - offset,
                                       Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                if count > 0 {
                    offset += count
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    blocked = count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                    break
                }
            }
        }
        // A broken connection drops its output; its EOF or error ends it on the read side.
        link.output = blocked ? Array(link.output[offset...]) : []
        if blocked != link.waitingToWrite {
            link.waitingToWrite = blocked
            group.setWaitingToWrite(link.fd, token: link.token, blocked)
        }
    }

    /// QMP commands that take descriptors passed with SCM_RIGHTS.
    static let commandsTakingDescriptors: Set<String> = ["getfd", "add-fd"]

    /// One `recvmsg`: the byte count (0 at EOF, -1 on error) and the SCM_RIGHTS descriptors.
    private static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer,
                                control: UnsafeMutableRawBufferPointer) -> (Int, [Int32]) {
        var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        var message = msghdr()
        let count = withUnsafeMutablePointer(to: &vector) { vectorPointer in
            message.msg_iov = vectorPointer
            message.msg_iovlen = 1
            message.msg_control = control.baseAddress
            message.msg_controllen = control.count
            return recvmsg(fd, &message, Int32(MSG_CMSG_CLOEXEC))
        }
        guard count > 0, message.msg_controllen >= MemoryLayout<cmsghdr>.size else { return (count, []) }
        // One SCM_RIGHTS message: QMP senders attach all descriptors to one sendmsg.
        let header = control.load(as: cmsghdr.self)
        guard header.cmsg_level == SOL_SOCKET, header.cmsg_type == Int32(SCM_RIGHTS) else { return (count, []) }
        let start = MemoryLayout<cmsghdr>.size
        let fds = (0..<(header.cmsg_len - start) / 4).map {
            control.loadUnaligned(fromByteOffset: start + $0 * 4, as: Int32.self)
        }
        return (count, fds)
    }
}
