import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

extension GuestReset {
    /// The watch over time, on every QEMU build: a flagged guest link reset long after
    /// attach, past several periodic checks with guest config traffic before each, still
    /// stops the VM (QEMU 10 truncates a file it reopens, so a check that sent `logfile`
    /// blinded the broker); and a trace path broken on purpose is reported within one check
    /// and repaired.
    @Suite(.serialized) struct LateLinkResetTests {
        static let checkMilliseconds = 400

        @Test(arguments: QEMUBuild.all) func aFlaggedResetPastSeveralChecksStillStops(_ build: QEMUBuild) throws {
            let rig = try RecoveryRig(build: build, checkMilliseconds: Self.checkMilliseconds)
            let client = rig.client!
            rig.hostFatalError()
            #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
            var size = rig.traceLogSize()
            for _ in 0..<3 {
                try rig.guestConfigTraffic()
                try rig.waitForChecks(1)
                // Nothing cut the file under the reader: it only grows.
                let now = rig.traceLogSize()
                #expect(now > size, "the trace log went from \(size) to \(now) bytes")
                size = now
            }
            #expect(try client.execute("query-broker")["return"]?["vms"]?[0]?["link-reset-watch"]?.bool == true)
            try rig.guestLinkReset()
            #expect(try client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop")
            #expect(try client.nextEvent("STOP") != nil)
            #expect(try rig.status() == "paused")
            #expect(!client.events.contains { $0["event"]?.string == "BROKER_LINK_RESET_WATCH" && $0["data"]?["active"]?.bool == false })
        }

        @Test(arguments: QEMUBuild.all) func aBrokenPathIsReportedWithinOneCheckAndRepaired(_ build: QEMUBuild) throws {
            let rig = try RecoveryRig(directMonitor: true, build: build, checkMilliseconds: Self.checkMilliseconds)
            let client = rig.client!
            rig.hostFatalError()
            #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
            let path = rig.directory.file("vm1.trace.log")

            // Truncated under QEMU and the broker (an operator's `: > file`): QEMU 7.2 appends
            // from the top, QEMU 10 writes at its old offset behind a hole; lines still count.
            try rig.guestConfigTraffic()
            #expect(truncate(path, 0) == 0)
            try rig.guestConfigTraffic()
            try rig.waitForChecks(2)
            #expect(try rig.watchIsOn(client) == true)

            // QEMU's own second monitor points the log elsewhere: the canary stops arriving.
            let direct = try rig.qemu.directClient()
            let redirected = Deadline.now()
            #expect(try direct.execute("human-monitor-command", arguments: .object([
                "command-line": .string("logfile \(rig.directory.file("elsewhere.log"))")]))["return"]?.string == "")
            let lost = try #require(try client.nextWatchEvent(active: false, timeout: 10))
            let detection = Deadline.now() - redirected
            print("\(build): log redirected behind the broker's back → BROKER_LINK_RESET_WATCH inactive in "
                + "\(Int(detection * 1000)) ms (check every \(Self.checkMilliseconds) ms)")
            #expect(lost["data"]?["reason"]?.string?.contains("canary") == true, "\(lost)")
            #expect(detection < Double(Self.checkMilliseconds) / 1000 + 1.0)
            #expect(try client.nextWatchEvent(active: true, timeout: 10) != nil)

            // The file replaced by another: seen, opened afresh, QEMU put back on it.
            let planted = rig.directory.file("planted.log")
            close(open(planted, O_WRONLY | O_CREAT, 0o600))
            let replaced = Deadline.now()
            #expect(rename(planted, path) == 0)
            #expect(try client.nextWatchEvent(active: false, timeout: 10) != nil)
            print("\(build): trace log replaced → inactive in \(Int((Deadline.now() - replaced) * 1000)) ms")
            #expect(try client.nextWatchEvent(active: true, timeout: 10) != nil)

            // Whatever was broken, the flagged link reset is still seen afterwards.
            try rig.guestConfigTraffic()
            try rig.waitForChecks(1)
            try rig.guestLinkReset()
            #expect(try client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop")
            #expect(try client.nextEvent("STOP") != nil)
        }
    }
}

extension RecoveryRig {
    var traceLogPath: String { directory.file("vm1.trace.log") }

    func traceLogSize() -> Int {
        var status = stat()
        return stat(traceLogPath, &status) == 0 ? Int(status.st_size) : -1
    }

    /// What a running guest does all the time: harmless config writes (rp0's Bridge Control
    /// written as 0, twenty times).
    func guestConfigTraffic() throws {
        for _ in 0..<20 {
            try qtest.ecamWrite(bus: 0, slot: Self.rootPortSlot, function: 0, offset: 0x3E, value: 0, width: 2)
        }
    }

    /// Waits until `count` more of the broker's periodic checks have proven the watch: each
    /// writes its canary line (`monitor_qmp_cmd_in_band`) into the trace log.
    func waitForChecks(_ count: Int) throws {
        func canaries() -> Int { directory.read("vm1.trace.log").components(separatedBy: "monitor_qmp_cmd_in_band").count - 1 }
        let start = canaries()
        var seen = 0
        var last = start
        let deadline = Deadline(after: Double(checkMilliseconds * (count + 2)) / 1000 + 10)
        while seen < count {
            guard !deadline.passed else { throw QMPClient.Failure("no periodic check proved the watch (\(seen) of \(count))") }
            usleep(20_000)
            let now = canaries()
            // A truncated file counts again from its top.
            if now != last { seen += 1 }
            last = now
        }
    }

    /// What a failed expectation about the watch should show: the broker's view and the
    /// end of the trace log.
    func diagnostics(_ client: QMPClient) throws -> String {
        "query-broker: \(try client.execute("query-broker")); events: \(client.events); "
            + "trace log tail: \(directory.read("vm1.trace.log").suffix(3000))"
    }

    func watchIsOn(_ client: QMPClient) throws -> Bool? {
        try client.execute("query-broker")["return"]?["vms"]?[0]?["link-reset-watch"]?.bool
    }
}
