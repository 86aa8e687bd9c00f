import BrokerTesting
import Glibc
import QMPBroker
import Testing
import VFIOWatch

/// `run --metrics-listen`: a Prometheus scrape over HTTP whose counters follow what the
/// broker does (real QEMU, the built binary, loopback TCP).
@Suite(.serialized) struct MetricsTests {
    @Test func aScrapeShowsCountersMove() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let sysfs = FakeSysfsTree(in: directory)
        directory.write("broker.toml", """
            socket-dir = "\(directory.path)"
            sysfs-root = "\(sysfs.root)"
            allow-inject = true
            [[vm]]
            name = "vm1"
            qmp = "\(qemu.qmpSocket)"
            [[vm.device]]
            id = "dev0"
            host = "\(sysfs.host)"
            policy = "stop"
            """)
        let log = directory.file("broker.log")
        let broker = try BrokerProcess(arguments: ["run", "--config", directory.file("broker.toml"),
                                                   "--metrics-listen", "127.0.0.1:0"], logPath: log)
        let client = try QMPClient(path: directory.file("vm1.qmp"))
        try client.negotiate()
        let port = try #require(Self.port(inLog: log))
        let vm = "{vm=\"vm1\"}"
        let before = try HTTPScrape.get(port: port, path: "/metrics")
        #expect(before.hasPrefix("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4"))
        #expect(HTTPScrape.value(of: "qmp_broker_upstream_connected\(vm)", in: before) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_clients\(vm)", in: before) == 1)
        let forwarded = HTTPScrape.value(of: "qmp_broker_commands_forwarded_total\(vm)", in: before) ?? 0

        // Running, so that policy stop has a VM to stop (QEMUInstance starts paused).
        #expect(try client.execute("cont")["return"] != nil)
        for _ in 0..<2 { #expect(try client.execute("query-status")["return"] != nil) }
        #expect(try client.execute("x-vfio-inject-error", arguments: .object([
            "device": .string("dev0"), "severity": .string("fatal")]))["return"] != nil)
        #expect(try client.nextEvent("VFIO_PCI_ERROR") != nil)
        // A command answered on the VM's event loop: whatever handling the error had left is done.
        #expect(try client.execute("query-vfio-devices")["return"] != nil)

        let after = try HTTPScrape.get(port: port, path: "/metrics")
        #expect(HTTPScrape.value(of: "qmp_broker_commands_forwarded_total\(vm)", in: after) == forwarded + 3, "\(after)")
        #expect(HTTPScrape.value(of: "qmp_broker_command_duration_seconds_count\(vm)", in: after) ?? 0 >= forwarded + 3)
        #expect(HTTPScrape.value(of: "qmp_broker_host_errors_total{vm=\"vm1\",severity=\"fatal\",source=\"inject\"}", in: after) == 1,
                "\(after)")
        #expect(HTTPScrape.value(of: "qmp_broker_flagged_links\(vm)", in: after) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_link_error_flags_set_total\(vm)", in: after) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_events_total\(vm)", in: after) ?? 0 >= 1)
        // Policy stop: the fatal error made the broker stop the VM (the alert rules watch this).
        #expect(HTTPScrape.value(of: "qmp_broker_stops_total\(vm)", in: after) == 1, "\(after)")
        #expect(HTTPScrape.value(of: "qmp_broker_conts_total\(vm)", in: after) == 0)
        try Self.checkWithPromtool(scrape: after, in: directory)
        #expect(try HTTPScrape.get(port: port, path: "/healthz").hasSuffix("\r\n\r\nok\n"))
        #expect(try HTTPScrape.get(port: port, path: "/other").hasPrefix("HTTP/1.0 404"))
        broker.kill()
        _ = qemu
    }

    /// The guest's reset of a flagged link: counted as a link reset and as the broker's stop.
    @Test func aGuestLinkResetOfAFlaggedLinkCountsALinkResetAndAStop() throws {
        let rig = try CLIBrokerRig()
        let client = try rig.start(["--metrics-listen", "127.0.0.1:0"])
        let port = try #require(Self.port(inLog: rig.logPath))
        let vm = "{vm=\"vm1\"}"
        #expect(try client.execute("cont")["return"] != nil)
        #expect(try rig.add(client, id: "dev0", host: rig.sysfs.host, injectAt: "rp0")["return"] != nil)
        #expect(try rig.inject(client, "dev0", "fatal")["return"] != nil)
        #expect(try client.nextEvent("VFIO_PCI_ERROR") != nil)
        try rig.waitForFirmwareToNumberDev0(client)
        let before = try HTTPScrape.get(port: port, path: "/metrics")
        #expect(HTTPScrape.value(of: "qmp_broker_link_resets_total\(vm)", in: before) == 0)
        #expect(HTTPScrape.value(of: "qmp_broker_stops_total\(vm)", in: before) == 0)
        try rig.guestLinkReset()
        #expect(try client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop", "\(rig.log)")
        #expect(try rig.waitUntilPaused(client))
        let after = try HTTPScrape.get(port: port, path: "/metrics")
        #expect(HTTPScrape.value(of: "qmp_broker_link_resets_total\(vm)", in: after) == 1, "\(after)")
        #expect(HTTPScrape.value(of: "qmp_broker_stops_total\(vm)", in: after) == 1, "\(after)")
        #expect(HTTPScrape.value(of: "qmp_broker_upstream_connects_total\(vm)", in: after) == 1)
        rig.kill()
    }

    /// Whether each VM and device is protected: the watch with its source, each
    /// device's error trigger with its source, the count of watched but unprotected devices,
    /// and the broker's own up, ready and version.
    @Test func aScrapeShowsWhetherTheVMIsProtected() throws {
        let rig = try CLIBrokerRig()
        let client = try rig.start(["--metrics-listen", "127.0.0.1:0"])
        let port = try #require(Self.port(inLog: rig.logPath))
        #expect(try rig.add(client, id: "dev0", host: rig.sysfs.host, injectAt: "rp0")["return"] != nil)
        let unprotected = try HTTPScrape.get(port: port, path: "/metrics")
        #expect(HTTPScrape.value(of: "qmp_broker_link_reset_watch{vm=\"vm1\",source=\"trace-log\"}", in: unprotected) == 1,
                "\(unprotected)")
        // No eventfd yet and no vfio-pci to take over: watched, not protected.
        #expect(HTTPScrape.value(of: "qmp_broker_error_trigger_active{vm=\"vm1\",device=\"dev0\",source=\"none\"}",
                                 in: unprotected) == 0, "\(unprotected)")
        #expect(HTTPScrape.value(of: "qmp_broker_devices_watched{vm=\"vm1\"}", in: unprotected) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_devices_unprotected{vm=\"vm1\"}", in: unprotected) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_build_info{version=\"\(BrokerVersion.string)\"}", in: unprotected) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_up", in: unprotected) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_ready", in: unprotected) == 1)

        let fd = makeEventFD()
        defer { close(fd) }
        let copy = dup(fd)
        #expect(try client.execute("vfio-eventfd-add", arguments: .object([
            "device": .string("dev0"), "severity": .string("any")]), fds: [copy])["return"] != nil)
        close(copy)
        let protected = try HTTPScrape.get(port: port, path: "/metrics")
        #expect(HTTPScrape.value(of: "qmp_broker_error_trigger_active{vm=\"vm1\",device=\"dev0\",source=\"eventfd\"}",
                                 in: protected) == 1, "\(protected)")
        #expect(!protected.contains("source=\"none\""), "the replaced series is gone: \(protected)")
        #expect(HTTPScrape.value(of: "qmp_broker_devices_unprotected{vm=\"vm1\"}", in: protected) == 0)
        rig.kill()
    }

    @Test func offByDefault() throws {
        let directory = try TemporaryDirectory()
        let result = try BrokerCLI.run(["run", "--help"], in: directory)
        #expect(result.output.contains("--metrics-listen <metrics-listen>"))
        #expect(result.output.contains("off by default"))
    }

    static let promtool: String? = ["\(ServiceUnitTests.root)/.cache/tools/promtool", "/usr/bin/promtool"]
        .first { access($0, X_OK) == 0 }

    /// Prometheus's own parser reads the scrape (its only lint is the missing HELP text:
    /// swift-metrics has no place for one), and every series contrib's alert rules use is in it.
    static func checkWithPromtool(scrape response: String, in directory: TemporaryDirectory) throws {
        guard let promtool else {
            Issue.record("promtool is missing: scripts/setup.sh puts it in .cache/tools")
            return
        }
        let body = String(response[try #require(response.range(of: "\r\n\r\n")).upperBound...])
        directory.write("scrape.txt", body)
        let lint = try ChildProcess([promtool, "check", "metrics"], outputPath: directory.file("lint.txt"),
                                    inputPath: directory.file("scrape.txt"))
        let status = lint.wait(timeout: 30)
        let problems = directory.read("lint.txt").split(separator: "\n").filter { !$0.hasSuffix(" no help text") }
        // Raw wait status: exit 0 (clean) or 3 (lint findings only); 1 would be a parse error.
        #expect(status == 0 || status == 3 << 8, "status \(String(describing: status)): \(directory.read("lint.txt"))")
        #expect(problems.isEmpty, "\(problems)")
        let rules = try #require(PathReader.read("\(ServiceUnitTests.root)/contrib/qmp-broker.rules.yml"))
        let used = Set(rules.split(whereSeparator: { !($0.isLetter || $0 == "_") }).filter { $0.hasPrefix("qmp_broker_") })
        #expect(used.count == 8)
        for name in used {
            #expect(body.contains("\n\(name){") || body.contains("\n\(name) "), "the rules use \(name), which the broker does not export")
        }
    }

    /// The port the broker bound for `127.0.0.1:0`, from its "serving metrics" log line.
    static func port(inLog path: String) -> UInt16? {
        let deadline = Deadline(after: 20)
        repeat {
            for line in (PathReader.read(path) ?? "").split(separator: "\n") where line.contains("serving metrics") {
                if let range = line.range(of: "port=") {
                    return UInt16(line[range.upperBound...].prefix { $0.isNumber })
                }
            }
            usleep(20_000)
        } while !deadline.passed
        return nil
    }
}
