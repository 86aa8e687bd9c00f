import BrokerTesting
import Glibc
import Logging

// `make bench`: the broker's performance figures, each beside a baseline measured in the same run,
// as one table. BENCH_ROUNDS sets the query-status trials per path (default 5000),
// BENCH_FANOUT_ROUNDS the fan-out rounds of each kind (5), BENCH_IDLE_SECONDS the 1000-VM idle
// window (30), BENCH_ONLY a comma list of qemu,fanout,stop,many.

var logger = Logger(label: "bench")
// The rows provoke error-level lines by design; BENCH_LOG_LEVEL=debug shows what the broker does.
logger.logLevel = getenv("BENCH_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .critical
let temporary = try TemporaryDirectory(prefix: "qmpb-bench")
let directory = temporary.path
let binaries = BenchBinaries()
var table = ResultTable()
/// Lines printed under the table.
var notes: [String] = []
/// Serves every scripted VMM but the 1000-VM group.
let vmmGroup = ScriptedVMMGroup()
func setting(_ name: String, default value: Int) -> Int {
    getenv(name).flatMap { Int(String(cString: $0)) } ?? value
}

/// Progress on stderr; the table alone goes to stdout.
func progress(_ text: String) {
    let line = "bench: \(text)\n"
    _ = write(2, line, line.utf8.count)
}

// MARK: forwarded query-status, and the real-QEMU stop rows

@MainActor func measureQEMURows() throws {
    let trials = setting("BENCH_ROUNDS", default: 5000)
    progress("query-status round trips, \(trials) per path")
    let qemuBench = try QEMUBench(directory: directory, logger: logger)
    let roundTrips = try qemuBench.roundTrips(trials: trials, warmUp: 500)
    let (direct, socat, broker) = (Percentiles(roundTrips.direct), Percentiles(roundTrips.socat), Percentiles(roundTrips.broker))
    table.section("query-status round trip, \(trials) trials per path, interleaved")
    table.add(BenchRow(name: "broker p50", value: broker.p50, unit: "µs", baselineName: "socat relay", baseline: socat.p50,
                       goals: [.ratioAtMost(1.05)]))
    table.add(BenchRow(name: "broker p99", value: broker.p99, unit: "µs", baselineName: "socat relay", baseline: socat.p99,
                       goals: [.ratioAtMost(1.05)]))
    table.add(BenchRow(name: "socat relay p50", value: socat.p50, unit: "µs", baselineName: "QEMU direct", baseline: direct.p50))
    table.add(BenchRow(name: "socat relay p99", value: socat.p99, unit: "µs", baselineName: "QEMU direct", baseline: direct.p99))
    let loopRelay = Percentiles(roundTrips.loopRelay)
    table.add(BenchRow(name: "bare loop relay (no QMP) p50", value: loopRelay.p50, unit: "µs", baselineName: "socat relay",
                       baseline: socat.p50))
    table.add(BenchRow(name: "bare loop relay (no QMP) p99", value: loopRelay.p99, unit: "µs", baselineName: "socat relay",
                       baseline: socat.p99))
    // How stable p99 is at this trial count: the same figure over each half of the run.
    let halves = [("broker", roundTrips.broker), ("socat", roundTrips.socat)].map { name, samples in
        let half = samples.count / 2
        let (first, second) = (Percentiles(Array(samples[..<half])), Percentiles(Array(samples[half...])))
        return "\(name) \(ResultTable.format(first.p99)) / \(ResultTable.format(second.p99)) µs"
    }
    notes.append("query-status p99 over the first / second half of the trials: \(halves.joined(separator: ", "))")

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

    progress("USDT source against the dtrace-only QEMU build")
    if let usdt = try measureUSDT(directory: directory, logger: logger, trials: 1000) {
        let traceLog = Percentiles(stops.sbrStop)
        table.section("the USDT source on the dtrace-only QEMU (source: \(usdt.source)); trace-log figures from Debian's binary above")
        let (stop, unarmed, armed) = (Percentiles(usdt.sbrStop), Percentiles(usdt.writeUnarmed), Percentiles(usdt.writeArmed))
        table.add(BenchRow(name: "guest SBR (qtest) → QEMU's STOP, usdt p50", value: stop.p50, unit: "µs",
                           baselineName: "trace-log", baseline: traceLog.p50))
        table.add(BenchRow(name: "guest SBR (qtest) → QEMU's STOP, usdt p99", value: stop.p99, unit: "µs",
                           baselineName: "trace-log", baseline: traceLog.p99))
        table.add(BenchRow(name: "guest config write (qtest), uprobe armed p50", value: armed.p50, unit: "µs",
                           baselineName: "same QEMU, not armed", baseline: unarmed.p50))
        table.add(BenchRow(name: "guest config write (qtest), uprobe armed p99", value: armed.p99, unit: "µs",
                           baselineName: "same QEMU, not armed", baseline: unarmed.p99))
    } else {
        notes.append("USDT rows skipped: no dtrace-only QEMU in the cache (make qemu-dtrace)")
    }
}

// MARK: one event to 100 clients

@MainActor func measureFanoutRows() throws {
    let fanoutClients = 100
    let fanoutEvents = 2000
    progress("fan-out: \(fanoutEvents) events to \(fanoutClients) clients, broker and bare loop in alternating rounds")
    let fanoutVMM = try vmmGroup.listen(at: "\(directory)/fanout-vmm.qmp")
    let fanoutBroker = try ChildProcess([binaries.broker, "run", "--vm", "fanout=\(directory)/fanout-vmm.qmp",
                                         "--socket-dir", "\(directory)/fanout", "--log-level", "warning"],
                                        outputPath: "\(directory)/fanout-broker.log")
    try waitForSocket("\(directory)/fanout/fanout.qmp")
    let fanoutReader = try FanoutReader(binary: binaries.fanoutReader, brokerSocket: "\(directory)/fanout/fanout.qmp",
                                        clients: fanoutClients, events: fanoutEvents)
    let fanout = FanoutBench(reader: fanoutReader, writeUpstream: { fanoutVMM.sendRaw($0) },
                             brokerCPU: { ProcessFigures.cpuSeconds(pid: fanoutBroker.pid) ?? 0 })
    let rounds = setting("BENCH_FANOUT_ROUNDS", default: 5)
    let fanoutRounds = try fanout.run(rounds: rounds)
    fanoutBroker.kill(signal: SIGKILL)
    fanoutVMM.close()
    func median(_ values: [Double]) -> Double { Percentiles(values).p50 }
    let perRound = fanout.deliveriesPerRound
    table.section("one event to \(fanoutClients) clients, \(fanoutEvents) events a round, median of \(rounds) rounds (one reader process, epoll)")
    table.add(BenchRow(name: "broker deliveries/s (first event written upstream → last line read)",
                       value: median(fanoutRounds.broker.map { perRound / $0.seconds }), unit: "/s",
                       baselineName: "bare socketpair loop", baseline: median(fanoutRounds.bare.map { perRound / $0.seconds }),
                       goals: [.atLeast(1_000_000), .ratioAtLeast(1.0)]))
    table.add(BenchRow(name: "broker deliveries per CPU-second of the broker process",
                       value: median(fanoutRounds.broker.map { perRound / max($0.cpuSeconds, 1e-3) }), unit: "/s",
                       baselineName: "bare loop's writer", baseline: median(fanoutRounds.bare.map { perRound / max($0.cpuSeconds, 1e-6) }),
                       goals: [.atLeast(1_000_000)]))
    table.add(BenchRow(name: "  broker CPU per event fanned out to \(fanoutClients) clients",
                       value: median(fanoutRounds.broker.map { $0.cpuSeconds * 1e6 / Double(fanoutEvents) }), unit: "µs",
                       baselineName: "bare loop's writer",
                       baseline: median(fanoutRounds.bare.map { $0.cpuSeconds * 1e6 / Double(fanoutEvents) })))
}

// MARK: the broker's own share of error → stop, at a scripted VMM

@MainActor func measureScriptedStopRows() throws {
    let stopTrials = 1000
    progress("error → stop at a scripted VMM, \(stopTrials) trials each")
    let scripted = try ScriptedStopBench(directory: directory, group: vmmGroup, logger: logger)
    let bare = try BareStopPaths(directory: directory, group: vmmGroup)
    let eventFD = try scripted.eventFDTrials(stopTrials, bare: bare)
    let linkReset = try scripted.linkResetTrials(stopTrials, bare: bare)
    scripted.stop()
    bare.close()
    let (scriptedEventFD, bareEventFD) = (Percentiles(eventFD.broker), Percentiles(eventFD.bare))
    let (scriptedLinkReset, bareTraceLine) = (Percentiles(linkReset.broker), Percentiles(linkReset.bare))
    table.section("error → stop received by a scripted VMM (no QEMU, no vCPU pause), \(stopTrials) trials, each beside a bare one")
    table.add(BenchRow(name: "eventfd write → stop p50", value: scriptedEventFD.p50, unit: "µs",
                       baselineName: "bare poll+write relay", baseline: bareEventFD.p50, goals: [.aboveBaselineAtMost(15)]))
    table.add(BenchRow(name: "eventfd write → stop p99", value: scriptedEventFD.p99, unit: "µs",
                       baselineName: "bare poll+write relay", baseline: bareEventFD.p99, goals: [.ratioAtMost(1.2)]))
    table.add(BenchRow(name: "SBR trace line appended → stop p50", value: scriptedLinkReset.p50, unit: "µs",
                       baselineName: "bare inotify+read+write relay", baseline: bareTraceLine.p50, goals: [.aboveBaselineAtMost(15)]))
    table.add(BenchRow(name: "SBR trace line appended → stop p99", value: scriptedLinkReset.p99, unit: "µs",
                       baselineName: "bare inotify+read+write relay", baseline: bareTraceLine.p99, goals: [.ratioAtMost(1.2)]))
    let writes = try FlagWriteBench.measure(directory: directory, writes: stopTrials)
    table.add(BenchRow(name: "  flag commit on the loop (after the stop) p50", value: writes.flag.p50, unit: "µs",
                       baselineName: "history row handed to the writer", baseline: writes.handOff.p50))
    table.add(BenchRow(name: "  flag commit on the loop (after the stop) p99", value: writes.flag.p99, unit: "µs",
                       baselineName: "history row handed to the writer", baseline: writes.handOff.p99))
}

// MARK: 1000 VMs

@MainActor func measureManyVMRows() throws {
    let manyVMs = 1000
    let idleSeconds = Double(setting("BENCH_IDLE_SECONDS", default: 30))
    progress("\(manyVMs) VMs on the qmp-broker binary (one VM first, as the baseline); \(Int(idleSeconds)) s idle")
    let many = ManyVMsBench(brokerBinary: binaries.broker, directory: directory)
    let one = try many.run(count: 1, idleSeconds: 0)
    let thousand = try many.run(count: manyVMs, idleSeconds: idleSeconds)
    table.section("\(manyVMs) VMs, scripted VMMs (one group), one negotiated client each, the qmp-broker binary")
    table.add(BenchRow(name: "broker RSS", value: thousand.residentMiB, unit: "MiB", baselineName: "1 VM", baseline: one.residentMiB,
                       goals: [.atMost(64)]))
    table.add(BenchRow(name: "idle CPU over \(Int(idleSeconds)) s (% of one core)", value: thousand.idleCPUPercent ?? -1, unit: "%",
                       goals: [.atMost(0.5)]))
    table.add(BenchRow(name: "spawn → every client greeted", value: thousand.attachSeconds, unit: "s", baselineName: "1 VM",
                       baseline: one.attachSeconds, goals: [.atMost(2)]))
    table.add(BenchRow(name: "  commands to the VMMs while idle", value: thousand.idleCommandsPerSecond ?? -1, unit: "/s"))
    table.add(BenchRow(name: "  broker threads", value: Double(thousand.threads), unit: "", baselineName: "1 VM",
                       baseline: Double(one.threads)))
    if !thousand.idleCommands.isEmpty {
        let names = thousand.idleCommands.sorted { $0.value > $1.value }.prefix(4).map { "\($0.key) \($0.value)" }
        notes.append("commands the \(manyVMs)-VM broker sent while idle: \(names.joined(separator: ", "))")
    }
    if !thousand.problems.isEmpty {
        notes.append("the \(manyVMs)-VM broker logged \(thousand.problems.count) warnings, e.g.:")
        notes += thousand.problems.prefix(3).map { "  \($0)" }
    }
}

let only = getenv("BENCH_ONLY").map { Set(String(cString: $0).split(separator: ",").map(String.init)) }
for (name, measure) in [("qemu", measureQEMURows), ("fanout", measureFanoutRows), ("stop", measureScriptedStopRows),
                        ("many", measureManyVMRows)] where only?.contains(name) ?? true {
    try measure()
}
print(table.render(header: "qmp-broker bench: \(ProcessFigures.cpuModel()), \(ProcessFigures.onlineCores) cores"))
notes.forEach { print($0) }
vmmGroup.close()
temporary.remove()
