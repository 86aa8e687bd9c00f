import BrokerTesting
import Glibc
import LinkResetTrace
import QMPBroker
import QMPWire
import Testing

extension GuestReset {
    /// A real QEMU, 7.2 and 10.0: tracing turned on over QMP into a broker-owned regular file, guest
    /// config writes through qtest, and the pure pieces fed with what QEMU wrote.
    @Suite(.serialized) struct LinkResetObservationTests {
        let rp0 = GuestPCIAddress(bus: 0, slot: 0x1C, function: 0)

        /// QEMU (`QEMUCommandLine`: q35, TCG, paused, rp0 at 00:1c.0, dev0 behind it) with qtest,
        /// a negotiated QMP client, and tracing attached to `trace.log` in `directory`.
        private struct Attached {
            let directory = TemporaryDirectory.forTest()
            let qemu: QEMUInstance
            let qmp: QMPClient
            let qtest: QTestConnection
            let follower: TraceLogFollower
            let logPath: String
            let previouslyEnabled: Set<String>

            init(_ build: QEMUBuild) throws {
                let qtestPath = directory.file("qtest.sock")
                qemu = try QEMUInstance(in: directory, build: build) { commandLine in
                    commandLine.qtestSocket = qtestPath
                    commandLine.extra += ["-qtest-log", "none"]
                }
                qmp = try QMPClient(path: qemu.qmpSocket)
                try qmp.negotiate()
                qtest = try QTestConnection(path: qtestPath)
                // The broker creates the file (its owner, its mode) before QEMU opens it for append.
                logPath = directory.file("trace.log")
                let created = open(logPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard created >= 0 else { throw QMPClient.Failure("cannot create \(logPath)") }
                close(created)
                follower = try TraceLogFollower(path: logPath)

                var replies: [JSON] = []
                for command in LinkResetTracing.stateQueries {
                    let reply = try qmp.execute(command.name, arguments: command.arguments)
                    if let failure = command.check(reply: reply) { throw failure }
                    replies.append(reply)
                }
                previouslyEnabled = LinkResetTracing.previouslyEnabled(fromReplies: replies)
                for command in LinkResetTracing.attachCommands(logPath: logPath, pointLog: true) {
                    if let failure = command.check(reply: try qmp.execute(command.name, arguments: command.arguments)) {
                        throw failure
                    }
                }
            }

            func topology() throws -> PCITopology { try PCITopology(queryPCI: qmp.execute("query-pci")) }
        }

        @Test(arguments: QEMUBuild.all) func secondaryBusResetAboveDev0IsDetected(_ build: QEMUBuild) throws {
            let vm = try Attached(build)
            #expect(vm.previouslyEnabled.isEmpty)

            // Under -S no firmware ran: rp0's secondary bus is 0 and query-pci hides dev0.
            var topology = try vm.topology()
            #expect(topology.function(id: "rp0")?.address == rp0)
            #expect(topology.function(id: "dev0") == nil)

            // Program rp0's bus numbers as firmware would; the trace says to re-read the topology.
            try vm.qtest.configWrite(bus: 0, slot: 0x1C, function: 0, offset: 0x18, value: 0x0001_0100, width: 4)
            let busWrite = try #require(vm.follower.nextConfigWrite(), "\(vm.follower.rawLines)")
            #expect(busWrite == PCIConfigAccess(model: "pcie-root-port", address: rp0, offset: 0x18, value: 0x10100))
            #expect(topology.needsRefresh(after: busWrite))
            topology = try vm.topology()
            #expect(topology.bridges(above: "dev0").map(\.address) == [rp0])
            #expect(topology.bridges(above: "dev0").map(\.qdevID) == ["rp0"])

            // The write of the brief: outl 0xcf8 0x8000e03c, outw 0xcfe 0x40.
            var detector = SecondaryBusResetDetector()
            #expect(try vm.qtest.command("outl 0xcf8 0x8000e03c") == "OK")
            #expect(try vm.qtest.command("outw 0xcfe 0x40") == "OK")
            let assert = try #require(vm.follower.nextConfigWrite(), "\(vm.follower.rawLines)")
            #expect(assert == PCIConfigAccess(model: "pcie-root-port", address: rp0, offset: 0x3E, value: 0x40))
            #expect(detector.observe(assert) == .asserted(bridge: rp0))
            #expect(topology.devices(below: rp0, among: ["dev0"]) == ["dev0"])

            try vm.qtest.command("outw 0xcfe 0x0")
            let release = try #require(vm.follower.nextConfigWrite())
            #expect(detector.observe(release) == .released(bridge: rp0))

            // QMP is unaffected, and no QMP event reported any of it.
            #expect(try vm.qmp.execute("query-status")["return"]?["status"]?.string == "prelaunch")
            #expect(vm.qmp.events.isEmpty)
        }

        @Test(arguments: QEMUBuild.all) func latencyFromGuestWriteToParsedLine(_ build: QEMUBuild) throws {
            let vm = try Attached(build)
            var detector = SecondaryBusResetDetector()
            try vm.qtest.command("outl 0xcf8 0x8000e03c")
            var latencies: [Double] = []
            for round in 0..<100 {
                let assertNow = round % 2 == 0
                let start = Deadline.now()
                try vm.qtest.command(assertNow ? "outw 0xcfe 0x40" : "outw 0xcfe 0x0")
                let write = try #require(vm.follower.nextConfigWrite())
                latencies.append(Deadline.now() - start)
                #expect(detector.observe(write) == (assertNow ? .asserted(bridge: rp0) : .released(bridge: rp0)))
            }
            latencies.sort()
            let median = latencies[latencies.count / 2] * 1e6
            let p95 = latencies[latencies.count * 95 / 100] * 1e6
            let worst = latencies.last! * 1e6
            print("guest config write -> parsed trace line (qtest round trip included): "
                + "median \(Int(median)) us, p95 \(Int(p95)) us, max \(Int(worst)) us")
            #expect(worst < 1e6)
        }

        @Test(arguments: QEMUBuild.all) func systemResetIsBracketedInTheStreamBeforeTheResetEvent(_ build: QEMUBuild) throws {
            let vm = try Attached(build)
            var classifier = HotResetClassifier()
            #expect(try vm.qmp.execute("system_reset")["return"] != nil)
            let begin = try #require(vm.follower.next(timeout: 5, where: { $0 == .systemReset(.begin) }), "\(vm.follower.rawLines.suffix(5))")
            _ = classifier.observe(begin.event)
            #expect(classifier.insideSystemReset)
            let end = try #require(vm.follower.next(timeout: 5, where: { $0 == .systemReset(.end) }))
            _ = classifier.observe(end.event)
            #expect(!classifier.insideSystemReset)
            // The object lines between were not ours: only the two System lines parsed.
            #expect(vm.follower.rawLines.count > 10)
            let reset = try #require(try vm.qmp.nextEvent("RESET", timeout: 5))
            #expect(reset["data"]?["reason"]?.string == "host-qmp-system-reset")
        }

        @Test(arguments: QEMUBuild.all) func detachStopsTracingAndGivesTheLogBack(_ build: QEMUBuild) throws {
            let vm = try Attached(build)
            for command in LinkResetTracing.detachCommands(previouslyEnabled: vm.previouslyEnabled, restoreLogTo: "/dev/stderr") {
                let reply = try vm.qmp.execute(command.name, arguments: command.arguments)
                #expect(command.check(reply: reply) == nil, "\(command): \(reply)")
            }
            let states = try vm.qmp.execute("trace-event-get-state", arguments: .object(["name": .string("pci_cfg_write")]))
            #expect(TracingCommand.traceEventStates(fromReply: states) == ["pci_cfg_write": false])
            try vm.qtest.command("outl 0xcf8 0x8000e03c")
            try vm.qtest.command("outw 0xcfe 0x40")
            #expect(vm.follower.next(timeout: 0.3) == nil)
            // A failed logfile is reported (and QEMU then logs nowhere until the next good one).
            let bad = TracingCommand.setLogFile(path: vm.directory.file("missing/trace.log"))
            #expect(bad.check(reply: try vm.qmp.execute(bad.name, arguments: bad.arguments))?.description.hasPrefix(
                "logfile failed: Error opening logfile") == true)
        }
    }
}
