import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// A client that reads slowly is slowed, not dropped: while its replies are queued the
/// broker stops reading it, as QEMU's monitor does. Only unread events cut a client off.
@Suite(.serialized) struct BackpressureTests {
    let directory = TemporaryDirectory.forTest()
    let qemu: QEMUInstance
    let broker: BrokerInstance

    init() throws {
        qemu = try QEMUInstance(in: directory, directMonitor: true)
        broker = try BrokerInstance(upstream: qemu.qmpSocket, in: directory)
    }

    /// Sends `input` as fast as the socket takes it while reading at most `bytesPerSecond`;
    /// returns the lines read until `expected` lines, EOF, or the bound.
    func slowReaderExchange(_ path: String, input: [UInt8], expected: Int, bytesPerSecond: Int) throws -> (lines: Int, eof: Bool) {
        let client = try QMPClient(path: path, readGreeting: false)
        let fd = client.fd
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var sent = 0
        var lines = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        let perTick = bytesPerSecond / 100
        let deadline = Deadline(after: Sanitizer.scaled(90))
        while lines < expected && !deadline.passed {
            if sent < input.count {
                let count = input[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if count > 0 { sent += count }
            }
            var budget = perTick
            while budget > 0 {
                let count = read(fd, &buffer, min(budget, buffer.count))
                if count == 0 { return (lines, true) }
                if count < 0 { break }
                lines += buffer[..<count].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                budget -= count
            }
            usleep(10_000)
        }
        return (lines, false)
    }

    @Test func aSlowReaderGetsEveryParseErrorReply() throws {
        let input = [UInt8](repeating: UInt8(ascii: "]"), count: 100_000)
        let direct = try slowReaderExchange(qemu.directSocket!, input: input, expected: 100_001, bytesPerSecond: 3 << 20)
        let viaBroker = try slowReaderExchange(broker.socketPath, input: input, expected: 100_001, bytesPerSecond: 3 << 20)
        #expect(direct.lines == 100_001)  // QEMU's greeting and one error per byte
        #expect(viaBroker.lines == direct.lines)
        #expect(!viaBroker.eof)
    }
}
