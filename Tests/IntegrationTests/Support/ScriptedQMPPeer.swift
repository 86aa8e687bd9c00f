import Dispatch
import Foundation
import Glibc
import QMPBroker
import QMPWire
import Synchronization

/// A QMP server that answers like QEMU from a script, for what stock QEMU cannot show
/// without hardware (vfio-pci devices in QOM). One connection at a time, as QEMU's
/// monitor; every reply carries the request's id back.
final class ScriptedQMPPeer: Sendable {
    typealias Script = @Sendable (_ command: String, _ arguments: JSON?) -> JSON?

    let path: String
    private let listener: Int32
    private let script: Script
    private let connection = Mutex<Int32>(-1)
    private let received = Mutex<[String]>([])

    static let greeting = #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "scripted"}, "capabilities": ["oob"]}}"#

    /// `script` returns the `return` value for a command, or nil for CommandNotFound.
    init(path: String, script: @escaping Script) throws {
        self.path = path
        self.script = script
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 4) == 0 else { throw QMPClient.Failure("scripted peer cannot listen on \(path)") }
        // A thread of its own: blocked in accept(2) and read(2), it would hold a Dispatch
        // worker that the broker's queues need (see `runOnOwnThread`).
        Thread { [self] in serve() }.start()
    }

    /// Commands received so far, in order.
    var commands: [String] { received.withLock { $0 } }

    /// Sends an event to the connected broker.
    func emit(_ name: String, data: JSON) {
        sendRaw(#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "\#(name)", "data": \#(data)}"# + "\r\n")
    }

    /// Sends any bytes to the connected broker, QMP or not.
    func sendRaw(_ text: String) {
        let fd = connection.withLock { $0 }
        sendText(text, to: fd)
    }

    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        let fd = connection.withLock { $0 }
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func serve() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            connection.withLock { $0 = fd }
            converse(fd)
            Glibc.close(fd)
        }
    }

    private func converse(_ fd: Int32) {
        send(fd, Self.greeting)
        var reader = QMPInputReader()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return }
            var requests: [JSON] = []
            buffer.withUnsafeBytes { bytes in
                reader.feed(UnsafeRawBufferPointer(rebasing: bytes[..<count])) { input in
                    if case .value(let value) = input { requests.append(value) }
                }
            }
            for request in requests {
                let command = request["execute"]?.string ?? ""
                received.withLock { $0.append(command) }
                let reply = JSON.object()
                if command == "qmp_capabilities" {
                    reply["return"] = .object()
                } else if let value = script(command, request["arguments"]) {
                    reply["return"] = value
                } else {
                    reply["error"] = .object(["class": .string("CommandNotFound"),
                                              "desc": .string("The command \(command) has not been found")])
                }
                if let id = request["id"] { reply["id"] = id }
                send(fd, reply.description)
            }
        }
    }

    private func send(_ fd: Int32, _ text: String) {
        sendText(text + "\r\n", to: fd)
    }
}
