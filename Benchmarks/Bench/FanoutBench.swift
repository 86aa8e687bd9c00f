import Glibc

/// One event to 100 clients: the broker (events written by its VMM, read by the reader
/// process's 100 clients) against the bare loop (this thread writing the same bytes to 100
/// socketpairs read by the same reader process), in alternating rounds.
struct FanoutBench {
    /// QEMU's event framing; the broker passes the bytes on as they are.
    static let eventLine = Array(#"{"timestamp": {"seconds": 1764590000, "microseconds": 123456}, "event": "BENCH_FANOUT"}"#.utf8)
        + [13, 10]

    struct Round {
        var seconds: Double
        /// CPU seconds the broker (or the bare loop's writer) spent in the round.
        var cpuSeconds: Double
    }

    let reader: FanoutReader
    /// Writes text to the broker's upstream socket, as the VMM, and returns once it is written.
    let writeUpstream: (String) throws -> Void
    /// The broker process's CPU seconds so far.
    let brokerCPU: () -> Double

    var deliveriesPerRound: Double { Double(reader.clients * reader.events) }

    func brokerRound() throws -> Round {
        let burst = String(decoding: [[UInt8]](repeating: Self.eventLine, count: reader.events).joined(), as: UTF8.self)
        let cpuBefore = brokerCPU()
        try reader.startRound(.broker)
        let start = Clock.nanoseconds()
        try writeUpstream(burst)
        let end = try reader.roundEnd(.broker)
        return Round(seconds: Clock.microseconds(since: start, until: end) / 1e6, cpuSeconds: brokerCPU() - cpuBefore)
    }

    func bareRound() throws -> Round {
        let cpuBefore = ProcessFigures.threadCPUSeconds()
        try reader.startRound(.socketPairs)
        let start = Clock.nanoseconds()
        Self.eventLine.withUnsafeBytes { line in
            for _ in 0..<reader.events {
                for fd in reader.pairWriters { _ = write(fd, line.baseAddress, line.count) }
            }
        }
        let cpu = ProcessFigures.threadCPUSeconds() - cpuBefore
        let end = try reader.roundEnd(.socketPairs)
        return Round(seconds: Clock.microseconds(since: start, until: end) / 1e6, cpuSeconds: cpu)
    }

    /// `rounds` of each, alternating, so load drift hits both alike.
    func run(rounds: Int) throws -> (broker: [Round], bare: [Round]) {
        var broker: [Round] = []
        var bare: [Round] = []
        _ = try brokerRound()  // warm-up
        _ = try bareRound()
        for _ in 0..<rounds {
            broker.append(try brokerRound())
            bare.append(try bareRound())
        }
        return (broker, bare)
    }
}
