import BrokerTesting
import Glibc
import QMPBroker

/// The reader process (Benchmarks/FanoutReader): 100 negotiated clients of the broker
/// (group a) and 100 socketpair ends this process writes to (group b), in one epoll.
final class FanoutReader {
    let clients: Int
    let events: Int
    /// This process's ends of the socketpairs the reader reads (group b).
    let pairWriters: [Int32]
    private let control: Int32
    private let process: ChildProcess

    init(binary: String, brokerSocket: String, clients: Int, events: Int) throws {
        self.clients = clients
        self.events = events
        var control: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &control) == 0 else {
            throw QMPClient.Failure("socketpair: errno \(errno)")
        }
        // The child's numbers are 3...3+clients: every source descriptor is moved above
        // them first, or one dup2 of the spawn would overwrite a source of a later one.
        func high(_ fd: Int32) -> Int32 {
            let moved = fcntl(fd, F_DUPFD_CLOEXEC, Int32(4 + clients))
            close(fd)
            return moved
        }
        control[1] = high(control[1])
        var passing: [Int32: Int32] = [3: control[1]]
        var writers: [Int32] = []
        var readerEnds: [Int32] = []
        for index in 0..<clients {
            var pair: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw QMPClient.Failure("socketpair: errno \(errno)")
            }
            writers.append(pair[0])
            readerEnds.append(high(pair[1]))
            passing[Int32(4 + index)] = readerEnds[index]
        }
        process = try ChildProcess([binary, "3", "\(clients)", "\(events)", brokerSocket, "4"], outputPath: "/dev/stderr",
                                   passing: passing)
        readerEnds.forEach { close($0) }
        close(control[1])
        self.control = control[0]
        pairWriters = writers
        guard try readLine() == "ready" else { throw QMPClient.Failure("the fan-out reader did not start") }
    }

    deinit {
        close(control)
        pairWriters.forEach { close($0) }
        _ = process.wait(timeout: 5)
    }

    enum Group: UInt8 {
        case broker = 0x61  // "a"
        case socketPairs = 0x62  // "b"
    }

    /// Starts a round: the reader counts `events` more lines on every socket of `group`.
    func startRound(_ group: Group) throws {
        var byte = group.rawValue
        guard write(control, &byte, 1) == 1 else { throw QMPClient.Failure("the fan-out reader is gone") }
    }

    /// Waits for the round's end: the CLOCK_MONOTONIC nanoseconds of the read that completed it.
    func roundEnd(_ group: Group) throws -> UInt64 {
        let line = try readLine()
        let parts = line.split(separator: " ")
        guard parts.count == 2, parts[0].utf8.first == group.rawValue, let end = UInt64(parts[1]) else {
            throw QMPClient.Failure("the fan-out reader said \(line)")
        }
        return end
    }

    private func readLine() throws -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            guard read(control, &byte, 1) == 1 else { throw QMPClient.Failure("the fan-out reader is gone") }
            if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }
}
