import Dispatch
import Foundation
import Glibc
import QMPBroker
import QMPWire
import Synchronization

/// A VMM socket that misbehaves on purpose, for what QEMU will not do: accept and say
/// nothing, send garbage or half a greeting, leave `qmp_capabilities` unanswered, or
/// never answer one command. In `.good` mode it answers like QEMU (`{}` for everything)
/// except `x-hang`, which it holds until `answerHeld()`.
final class FaultyVMM: Sendable {
    enum Mode: Sendable { case silent, garbage, truncatedGreeting, unansweredCapabilities, good }

    let path: String
    private let listener: Int32
    private let state = Mutex<(mode: Mode, connections: Int, fd: Int32, held: [String])>((.silent, 0, -1, []))

    init(path: String, mode: Mode) throws {
        self.path = path
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 4) == 0 else { throw QMPClient.Failure("cannot listen on \(path)") }
        state.withLock { $0.mode = mode }
        // A thread of its own: blocked in accept(2) and read(2), it would hold a Dispatch
        // worker that the broker's queues need (see `runOnOwnThread`).
        Thread { [self] in serve() }.start()
    }

    var connections: Int { state.withLock { $0.connections } }

    func set(_ mode: Mode) { state.withLock { $0.mode = mode } }

    /// Answers the held `x-hang` commands now (late).
    func answerHeld() {
        let (fd, held) = state.withLock { ($0.fd, $0.held) }
        for id in held { write(fd, #"{"return": {}, "id": \#(id)}"# + "\r\n") }
    }

    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        let fd = state.withLock { $0.fd }
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func serve() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            let mode = state.withLock {
                $0.connections += 1
                $0.fd = fd
                return $0.mode
            }
            converse(fd, mode)
            Glibc.close(fd)
        }
    }

    private func converse(_ fd: Int32, _ mode: Mode) {
        switch mode {
        case .silent: break
        case .garbage: write(fd, "{\"hello\": \"not a greeting\"}\r\n")
        case .truncatedGreeting: write(fd, #"{"QMP": {"version": {"qemu": {"micro": 22, "#)
        case .unansweredCapabilities, .good: write(fd, ScriptedQMPPeer.greeting + "\r\n")
        }
        var reader = QMPInputReader()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return }
            guard mode == .good else { continue }
            var requests: [JSON] = []
            buffer.withUnsafeBytes { bytes in
                reader.feed(UnsafeRawBufferPointer(rebasing: bytes[..<count])) { input in
                    if case .value(let value) = input { requests.append(value) }
                }
            }
            for request in requests {
                let id = request["id"].map { $0.description } ?? "null"
                if request["execute"]?.string == "x-hang" {
                    state.withLock { $0.held.append(id) }
                    continue
                }
                write(fd, request["id"] == nil ? #"{"return": {}}"# + "\r\n" : #"{"return": {}, "id": \#(id)}"# + "\r\n")
            }
        }
    }

    private func write(_ fd: Int32, _ text: String) {
        sendText(text, to: fd)
    }
}
