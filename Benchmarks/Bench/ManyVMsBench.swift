import BrokerTesting
import Glibc
import QMPBroker
import VFIOWatch

/// `count` VMs served by the real `qmp-broker run` binary (so the process's RSS and CPU
/// are the broker's alone), every VMM scripted by one `ScriptedVMMGroup` in this process,
/// one negotiated client per VM.
struct ManyVMsBench {
    struct Figures {
        /// From the broker's spawn to the last client's greeting (a client is greeted once
        /// its VM's VMM is attached).
        var attachSeconds: Double
        var residentMiB: Double
        /// utime + stime over the idle window, in percent of one core.
        var idleCPUPercent: Double?
        /// Commands the broker sent its VMMs during the idle window, per second (all VMs).
        var idleCommandsPerSecond: Double?
        /// Those commands by name.
        var idleCommands: [String: Int]
        var threads: Int
        /// Lines of the broker's log saying something could not be set up (inotify limits...).
        var problems: [String]
    }

    let brokerBinary: String
    let directory: String

    func run(count: Int, idleSeconds: Double) throws -> Figures {
        let root = "\(directory)/many-\(count)"
        let socketDirectory = "\(root)/broker"
        mkdir(root, 0o700)
        let group = ScriptedVMMGroup()
        defer { group.close() }
        let vmms = try (0..<count).map { try group.listen(at: "\(root)/vmm\($0).qmp") }
        defer { vmms.forEach { $0.close() } }
        let config = "socket-dir = \"\(socketDirectory)\"\n"
            + (0..<count).map { "[[vm]]\nname = \"vm\($0)\"\nqmp = \"\(root)/vmm\($0).qmp\"\n" }.joined()
        try write(config, to: "\(root)/broker.toml")

        let start = Clock.nanoseconds()
        let broker = try ChildProcess([brokerBinary, "run", "--config", "\(root)/broker.toml", "--log-level", "warning"],
                                      outputPath: "\(root)/broker.log")
        defer {
            broker.kill(signal: SIGTERM)
            if broker.wait(timeout: 10) == nil { broker.kill(signal: SIGKILL) }
        }
        let clients = try (0..<count).map { index in
            let path = "\(socketDirectory)/vm\(index).qmp"
            try waitForSocket(path, timeout: 30)
            return try QMPClient(path: path, timeout: 30, readGreeting: false)
        }
        let greetedAt = try Self.negotiate(clients)
        let attachSeconds = Clock.microseconds(since: start, until: greetedAt) / 1e6
        // Attach goes on after the greeting (run state, tracing): wait until the VMMs hear nothing more.
        // (at most 5 s: a broker that keeps asking is idle as it will ever be).
        func heard() -> Int { vmms.reduce(0) { $0 + $1.commands.count } }
        var last = -1
        for _ in 0..<10 where heard() != last {
            last = heard()
            usleep(500_000)
        }
        var idle: Double?
        var commandsPerSecond: Double?
        var idleCommands: [String: Int] = [:]
        if idleSeconds > 0, let before = ProcessFigures.cpuSeconds(pid: broker.pid) {
            let heardBefore = vmms.map { $0.commands.count }
            usleep(UInt32(idleSeconds * 1e6))
            idle = ProcessFigures.cpuSeconds(pid: broker.pid).map { ($0 - before) / idleSeconds * 100 }
            let during = zip(vmms, heardBefore).flatMap { vmm, count in vmm.commands.dropFirst(count).map(\.name) }
            commandsPerSecond = Double(during.count) / idleSeconds
            idleCommands = Dictionary(during.map { ($0, 1) }, uniquingKeysWith: +)
        }
        let resident = Double(ProcessFigures.residentKiB(pid: broker.pid) ?? 0) / 1024
        let problems = (PathReader.read("\(root)/broker.log") ?? "").split(separator: "\n")
            .filter { !$0.contains("no --state-dir") }.map(String.init)
        return Figures(attachSeconds: attachSeconds, residentMiB: resident, idleCPUPercent: idle,
                       idleCommandsPerSecond: commandsPerSecond, idleCommands: idleCommands, threads: Self.threadCount(pid: broker.pid), problems: problems)
    }

    /// Reads every greeting and answers it with `qmp_capabilities`, all clients at once
    /// (`poll`); returns when the last greeting arrived.
    private static func negotiate(_ clients: [QMPClient]) throws -> UInt64 {
        var descriptors = clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        var linesSeen = [Int](repeating: 0, count: clients.count)
        var lastGreeting: UInt64 = 0
        var waiting = clients.count
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Deadline(after: 60)
        while waiting > 0 {
            guard !deadline.passed else { throw QMPClient.Failure("\(waiting) clients were never greeted and negotiated") }
            guard poll(&descriptors, nfds_t(descriptors.count), 1000) > 0 else { continue }
            for index in descriptors.indices where descriptors[index].revents != 0 && descriptors[index].events != 0 {
                let count = read(descriptors[index].fd, &buffer, buffer.count)
                guard count > 0 else { throw QMPClient.Failure("client \(index) read EOF") }
                let lines = buffer[..<count].filter { $0 == 10 }.count
                if linesSeen[index] == 0 && lines > 0 {
                    lastGreeting = Clock.nanoseconds()
                    try clients[index].send(#"{"execute": "qmp_capabilities"}"# + "\r\n")
                }
                linesSeen[index] += lines
                if linesSeen[index] >= 2 {
                    descriptors[index].events = 0
                    waiting -= 1
                }
            }
        }
        return lastGreeting
    }

    private static func threadCount(pid: pid_t) -> Int {
        let line = PathReader.read("/proc/\(pid)/status")?.split(separator: "\n").first { $0.hasPrefix("Threads:") }
        return line.flatMap { Int($0.split(separator: "\t").last ?? "") } ?? 0
    }

    private func write(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw QMPClient.Failure("cannot write \(path)") }
        defer { close(fd) }
        _ = text.utf8CString.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
    }
}
