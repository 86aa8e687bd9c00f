import BrokerTesting
import Glibc
import QMPBroker
import Testing

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
            policy = "report"
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

        for _ in 0..<3 { #expect(try client.execute("query-status")["return"] != nil) }
        #expect(try client.execute("x-vfio-inject-error", arguments: .object([
            "device": .string("dev0"), "severity": .string("fatal")]))["return"] != nil)
        #expect(try client.nextEvent("VFIO_PCI_ERROR") != nil)

        let after = try HTTPScrape.get(port: port, path: "/metrics")
        #expect(HTTPScrape.value(of: "qmp_broker_commands_forwarded_total\(vm)", in: after) == forwarded + 3, "\(after)")
        #expect(HTTPScrape.value(of: "qmp_broker_command_duration_seconds_count\(vm)", in: after) ?? 0 >= forwarded + 3)
        #expect(HTTPScrape.value(of: "qmp_broker_host_errors_total{vm=\"vm1\",severity=\"fatal\",source=\"inject\"}", in: after) == 1,
                "\(after)")
        #expect(HTTPScrape.value(of: "qmp_broker_flagged_links\(vm)", in: after) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_link_error_flags_set_total\(vm)", in: after) == 1)
        #expect(HTTPScrape.value(of: "qmp_broker_events_total\(vm)", in: after) ?? 0 >= 1)
        #expect(try HTTPScrape.get(port: port, path: "/healthz").hasSuffix("\r\n\r\nok\n"))
        #expect(try HTTPScrape.get(port: port, path: "/other").hasPrefix("HTTP/1.0 404"))
        broker.kill()
        _ = qemu
    }

    @Test func offByDefault() throws {
        let directory = try TemporaryDirectory()
        let result = try BrokerCLI.run(["run", "--help"], in: directory)
        #expect(result.output.contains("--metrics-listen <metrics-listen>"))
        #expect(result.output.contains("off by default"))
    }

    /// The port the broker bound for `127.0.0.1:0`, from its "serving metrics" log line.
    static func port(inLog path: String) -> UInt16? {
        let deadline = Deadline(after: 20)
        repeat {
            for line in (TextFile.read(path) ?? "").split(separator: "\n") where line.contains("serving metrics") {
                if let range = line.range(of: "port=") {
                    return UInt16(line[range.upperBound...].prefix { $0.isNumber })
                }
            }
            usleep(20_000)
        } while !deadline.passed
        return nil
    }
}
