import BrokerTesting
import Glibc
import Logging
import QMPBroker
import VFIOWatch

/// The USDT source against its own QEMU build (Debian's 7.2 source, dtrace backend only,
/// `make qemu-dtrace`): the guest SBR (qtest) → `STOP` figure, and what the armed
/// `pci_cfg_write` uprobe adds to each guest config write (the same qtest write timed on
/// the same QEMU before the broker arms the probes and after).
struct USDTFigures {
    var writeUnarmed: [Double] = []
    var writeArmed: [Double] = []
    var sbrStop: [Double] = []
    var source = ""
}

/// nil when the dtrace build is not in the cache.
func measureUSDT(directory: String, logger: Logger, trials: Int) throws -> USDTFigures? {
    guard let path = dtraceQEMU() else { return nil }
    var figures = USDTFigures()
    let monitor = "\(directory)/usdt-qemu.qmp", qtestSocket = "\(directory)/usdt-qtest.sock"
    var commandLine = QEMUCommandLine(qmpSocket: monitor, qtestSocket: qtestSocket)
    commandLine.binary = path
    commandLine.extra += ["-qtest-log", "none"]
    let qemu = try ChildProcess(commandLine.arguments, outputPath: "\(directory)/usdt-qemu.log")
    defer { qemu.kill(signal: SIGKILL) }
    try waitForSocket(monitor)
    try waitForSocket(qtestSocket)
    let qtest = try QTestConnection(path: qtestSocket)
    try qtest.enableECAM()  // while paused: the firmware does not race the guest-side writes
    // A harmless write: the root port's Bridge Control with SBR clear.
    let write = { try qtest.ecamWrite(bus: 0, slot: 0x1C, function: 0, offset: 0x3E, value: 0, width: 2) }
    for _ in 0..<200 { try write() }
    figures.writeUnarmed = try (0..<trials).map { _ in try Clock.microseconds { try write() } }

    var vm = VMConfiguration(name: "usdt", upstreamPath: monitor, socketPath: "\(directory)/usdt.qmp")
    vm.recovery.pollMilliseconds = 0
    let broker = try Broker(vms: [vm], logger: logger)
    try broker.start()
    defer { broker.stop() }
    let watcher = try QMPClient(path: vm.socketPath)
    try watcher.negotiate()
    _ = try watcher.execute("vfio-device-add", arguments: .object([
        "id": .string("dev0"), "host": .string("0000:3b:00.0"), "policy": .string("forward")]))
    try watcher.waitForLinkResetWatch()
    figures.source = try watcher.execute("query-broker")["return"]?["vms"]?[0]?["link-reset-source"]?.string ?? "?"
    for _ in 0..<200 { try write() }
    figures.writeArmed = try (0..<trials).map { _ in try Clock.microseconds { try write() } }

    _ = try watcher.execute("cont")
    _ = try watcher.nextEvent("RESUME", timeout: 5)
    let fatalFD = try EventFD.makeEventFD()
    defer { close(fatalFD) }
    _ = try watcher.execute("vfio-eventfd-add", arguments: .object(["device": .string("dev0"), "severity": .string("fatal")]),
                            fds: [dup(fatalFD)])
    for _ in 0..<min(trials, 200) {
        try EventFD.signal(fatalFD)
        _ = try watcher.nextEvent("VFIO_PCI_ERROR", timeout: 5)
        figures.sbrStop.append(try Clock.microseconds {
            try qtest.ecamWrite(bus: 0, slot: 0x1C, function: 0, offset: 0x3E, value: 0x40, width: 2)
            guard try watcher.nextEvent("STOP", timeout: 5) != nil else { throw QMPClient.Failure("no STOP after SBR (usdt)") }
        })
        try write()
        _ = try watcher.execute("cont")
        _ = try watcher.nextEvent("RESUME", timeout: 5)
    }
    return figures
}

/// The newest cached dtrace-only QEMU wrapper (scripts/build-qemu-dtrace.sh).
private func dtraceQEMU() -> String? {
    let cache = getenv("QMP_BROKER_CACHE").map { String(cString: $0) } ?? "/var/cache/qmp-broker"
    guard let directory = opendir(cache) else { return nil }
    defer { closedir(directory) }
    var found: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let wrapper = "\(cache)/\(name)/qemu-system-x86_64"
        if name.hasPrefix("qemu-dtrace-"), !name.hasSuffix(".part"), access(wrapper, X_OK) == 0 { found.append(wrapper) }
    }
    return found.sorted().last
}
