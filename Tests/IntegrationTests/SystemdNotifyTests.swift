import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// `Type=notify`: the built binary sends READY, WATCHDOG and STOPPING datagrams to a real
/// `$NOTIFY_SOCKET`, as systemd's sd_notify protocol has them.
@Suite(.serialized) struct SystemdNotifyTests {
    /// A datagram socket standing in for systemd's notify socket.
    final class NotifySocket {
        let fd: Int32
        let name: String

        /// `abstract`: an `@name` in the abstract namespace instead of a path.
        struct BindFailed: Error {}

        init(path: String, abstract: Bool) throws {
            name = abstract ? "@\(path)" : path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(path.utf8)
            if abstract { bytes.insert(0, at: 0) }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            guard bound == 0 else {
                close(fd)
                throw BindFailed()
            }
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        func next() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
        }

        /// Skips messages until one that satisfies `matches` (bounded by the receive timeout).
        func next(where matches: (String) -> Bool) -> String? {
            while let message = next() { if matches(message) { return message } }
            return nil
        }

        deinit { close(fd) }
    }

    func check(abstract: Bool) throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let notify = try NotifySocket(path: abstract ? "qmpb-notify-\(getpid())" : directory.file("notify"), abstract: abstract)
        let broker = try BrokerProcess(
            arguments: ["run", "--socket-dir", directory.path, "--vm", "vm1=\(qemu.qmpSocket)"],
            logPath: directory.file("broker.log"),
            environment: ["NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "200000"])
        let ready = notify.next()
        #expect(ready == "READY=1\nSTATUS=serving 1 VM(s)\nMAINPID=\(broker.process.pid)", "\(directory.read("broker.log"))")
        // READY comes after the sockets exist: a unit ordered after us can connect at once.
        #expect(access(directory.file("vm1.qmp"), F_OK) == 0)
        #expect(notify.next(where: { $0 == "WATCHDOG=1" }) != nil)
        broker.process.kill(signal: SIGTERM)
        #expect(notify.next(where: { $0 == "STOPPING=1" }) != nil)
        let status = broker.process.wait(timeout: 20)
        #expect(status == 0)
        _ = qemu
    }

    @Test func notifiesThroughASocketPath() throws { try check(abstract: false) }

    @Test func notifiesThroughAnAbstractSocket() throws { try check(abstract: true) }
}
