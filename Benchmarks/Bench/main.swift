import Glibc
import Logging
import QMPBroker

// `make bench`: the figures of issue 11, each beside a baseline measured in the same run,
// as one table. BENCH_ROUNDS sets the query-status trials per path (default 5000).

var logger = Logger(label: "bench")
logger.logLevel = .critical  // the rows provoke error-level lines by design
let temporary = try TemporaryDirectory(prefix: "qmpb-bench")
let directory = temporary.path
let binaries = BenchBinaries()
var table = ResultTable()
/// Progress on stderr; the table alone goes to stdout.
func progress(_ text: String) {
    let line = "bench: \(text)\n"
    _ = write(2, line, line.utf8.count)
}

// MARK: forwarded query-status, and the real-QEMU stop rows

let trials = Int(getenv("BENCH_ROUNDS").map { String(cString: $0) } ?? "") ?? 5000
progress("query-status round trips, \(trials) per path")
let qemuBench = try QEMUBench(directory: directory, logger: logger)
let roundTrips = try qemuBench.roundTrips(trials: trials, warmUp: 500)
let (direct, socat, broker) = (Percentiles(roundTrips.direct), Percentiles(roundTrips.socat), Percentiles(roundTrips.broker))
table.section("query-status round trip, \(trials) trials per path, interleaved")
table.add(BenchRow(name: "broker p50", value: broker.p50, unit: "µs", baselineName: "socat relay", baseline: socat.p50,
                   goals: [.ratioAtMost(1.10)]))
table.add(BenchRow(name: "broker p99", value: broker.p99, unit: "µs", baselineName: "socat relay", baseline: socat.p99,
                   goals: [.ratioAtMost(1.10)]))
table.add(BenchRow(name: "socat relay p50", value: socat.p50, unit: "µs", baselineName: "QEMU direct", baseline: direct.p50))
table.add(BenchRow(name: "socat relay p99", value: socat.p99, unit: "µs", baselineName: "QEMU direct", baseline: direct.p99))

progress("real-QEMU error and link-reset rows")
let stops = try qemuBench.stopFigures(trials: 200)
qemuBench.stop()
table.section("end to end with the real QEMU (its vCPU pause included), 200 trials")
let errorEvent = Percentiles(stops.errorEvent)
table.add(BenchRow(name: "eventfd → VFIO_PCI_ERROR at a client p50", value: errorEvent.p50, unit: "µs",
                   baselineName: "QEMU direct query-status", baseline: direct.p50))
for (name, samples) in [("fatal eventfd → QEMU's STOP at a client", stops.eventFDStop),
                        ("guest SBR (qtest) → QEMU's STOP at a client", stops.sbrStop)] {
    let figures = Percentiles(samples)
    table.add(BenchRow(name: "\(name) p50", value: figures.p50, unit: "µs", baselineName: "QEMU direct query-status",
                       baseline: direct.p50))
    table.add(BenchRow(name: "\(name) p99", value: figures.p99, unit: "µs", baselineName: "QEMU direct query-status",
                       baseline: direct.p99))
}
let linkResetToStop = Percentiles(stops.linkResetToStop)
table.add(BenchRow(name: "  of which VFIO_LINK_RESET → STOP p50 (event stamps)", value: linkResetToStop.p50, unit: "µs",
                   baselineName: "qtest round trip", baseline: Percentiles(stops.qtestRoundTrip).p50))

print(table.render(header: "qmp-broker bench: \(ProcessFigures.cpuModel()), \(ProcessFigures.onlineCores) cores"))
