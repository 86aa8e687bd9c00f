import EventLoop
import QMPBroker

/// A relay on the broker's own transport and event loop with no QMP at all: what the loop
/// and the transport cost a forwarded command before the broker does anything.
final class BareLoopRelay: @unchecked Sendable {
    // @unchecked: `listener` and `connections` are touched only on `loop`.
    private let loop = EventLoop(name: "bench.relay")
    private var listener: UnixSocketListener?
    private var connections: [UnixStreamConnection] = []

    init(path: String, upstream: String) throws(SystemCallError) {
        try loop.runAndWait { [self] () throws(SystemCallError) in
            listener = try UnixSocketListener(path: path, mode: 0o600, loop: loop) { [self] fd in accept(fd, upstream: upstream) }
        }
    }

    private func accept(_ fd: Int32, upstream path: String) {
        let downstream = UnixStreamConnection(adopting: fd, loop: loop, maxQueuedBytes: 1 << 24)
        guard let upstream = try? UnixStreamConnection.connect(toPath: path, loop: loop, maxQueuedBytes: 1 << 24) else {
            return downstream.close()
        }
        downstream.onRead = { bytes, _ in upstream.send(Array(bytes)) }
        upstream.onRead = { bytes, _ in downstream.send(Array(bytes)) }
        downstream.onClose = { _ in upstream.close() }
        upstream.onClose = { _ in downstream.close() }
        connections += [downstream, upstream]
        downstream.start()
        upstream.start()
    }

    func close() {
        loop.runAndWait { [self] in
            listener?.close()
            connections.forEach { $0.close() }
        }
        loop.shutdown()
    }
}
