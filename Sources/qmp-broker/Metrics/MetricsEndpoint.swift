import EventLoop
import Glibc
import Prometheus

/// `--metrics-listen ADDR:PORT`: a minimal HTTP/1.0 responder for Prometheus scrapes
/// (`GET /metrics`, and `GET /healthz`). It runs on a loop of its own, never a VM's: a slow
/// scraper delays other scrapes by at most the socket timeout (a scrape is served blocking,
/// it is rare and small), and never a VM.
final class MetricsEndpoint {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let registry: PrometheusCollectorRegistry
    private let loop = EventLoop(name: "qmp-broker.metrics")
    private let listener: LoopBound<WatchedDescriptor>
    /// The bound port (useful when 0 was asked for).
    let port: UInt16

    init(listen address: String, registry: PrometheusCollectorRegistry) throws(Failure) {
        self.registry = registry
        let endpoint = try Self.parse(address)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = endpoint
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot listen on \(address): \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: actual.sin_port)
        listener = LoopBound(WatchedDescriptor(adopting: fd, loop: loop), loop: loop)
        do {
            try loop.runAndWait { [listener, registry] () throws(SystemCallError) in
                listener.value.onReady = { _ in Self.acceptAll(fd, registry: registry) }
                try listener.value.setInterest(.read)
            }
        } catch {
            throw Failure(description: "cannot watch \(address): \(error)")
        }
    }

    func stop() {
        loop.runAndWait { [listener] in listener.value.close() }
        loop.shutdown()
    }

    /// "127.0.0.1:9464", "0.0.0.0:9464" or "localhost:9464".
    static func parse(_ text: String) throws(Failure) -> sockaddr_in {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw Failure(description: "--metrics-listen takes ADDR:PORT (IPv4), got '\(text)'")
        }
        let host = String(text[..<colon])
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            throw Failure(description: "--metrics-listen takes ADDR:PORT (IPv4), got '\(text)'")
        }
        return address
    }

    private static func acceptAll(_ listener: Int32, registry: PrometheusCollectorRegistry) {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }  // EAGAIN: drained
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            serve(client, registry: registry)
            close(client)
        }
    }

    private static func serve(_ client: Int32, registry: PrometheusCollectorRegistry) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        // Only the request line matters; the header block is bounded at 16 KiB.
        while request.count < 16_384 && !request.containsHeaderEnd {
            let count = read(client, &chunk, chunk.count)
            guard count > 0 else { break }
            request += chunk[..<count]
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let response: [UInt8]
        switch (line.first.map(String.init), line.count > 1 ? String(line[1]) : nil) {
        case ("GET", "/metrics"?):
            response = Self.response(200, "OK", type: "text/plain; version=0.0.4; charset=utf-8", body: registry.emitToBuffer())
        case ("GET", "/healthz"?):
            response = Self.response(200, "OK", type: "text/plain", body: Array("ok\n".utf8))
        case ("GET", _):
            response = Self.response(404, "Not Found", type: "text/plain", body: Array("try /metrics\n".utf8))
        default:
            response = Self.response(405, "Method Not Allowed", type: "text/plain", body: [])
        }
        var sent = 0
        while sent < response.count {
            let count = response[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return }
            sent += count
        }
    }

    private static func response(_ status: Int, _ reason: String, type: String, body: [UInt8]) -> [UInt8] {
        Array("HTTP/1.0 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
    }
}

private extension [UInt8] {
    var containsHeaderEnd: Bool {
        count >= 4 && indices.dropLast(3).contains { self[$0] == 13 && self[$0 + 1] == 10 && self[$0 + 2] == 13 && self[$0 + 3] == 10 }
    }
}
