import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// The error history an operator reads: through QMP (`query-vfio-error-history`) and
/// through `qmp-broker history` / `summary` reading the state database directly.
@Suite(.serialized) struct HistoryCLITests {
    @Test func errorsAreReadableThroughQMPAndTheCLI() throws {
        let directory = try TemporaryDirectory()
        let qemu = try QEMUInstance(in: directory)
        let sysfs = FakeSysfsTree(in: directory)
        let state = directory.file("state")
        directory.write("broker.toml", """
            socket-dir = "\(directory.path)"
            state-dir = "\(state)"
            sysfs-root = "\(sysfs.root)"
            allow-inject = true

            [[vm]]
            name = "vm1"
            qmp = "\(qemu.qmpSocket)"

            [[vm.device]]
            id = "dev0"
            host = "\(sysfs.host)"
            policy = "report"

            [[vm.device]]
            id = "dev1"
            host = "0000:5e:00.0"
            policy = "report"
            """)
        let broker = try BrokerProcess(arguments: ["run", "--config", directory.file("broker.toml")],
                                       logPath: directory.file("broker.log"))
        let client = try QMPClient(path: directory.file("vm1.qmp"))
        try client.negotiate()
        for (device, severity, errors) in [("dev0", "correctable", ["RxErr"]), ("dev0", "fatal", ["DLP", "SDES"]),
                                           ("dev1", "non-fatal", ["CmpltTO"])] {
            let reply = try client.execute("x-vfio-inject-error", arguments: .object([
                "device": .string(device), "severity": .string(severity), "errors": .strings(errors)]))
            #expect(reply["return"] != nil, "\(reply)")
            #expect(try client.nextEvent("VFIO_PCI_ERROR") != nil)
        }

        // The fatal error set the flag: a row of its own. Rows are written off the VM's
        // event loop, and the command waits for the writer: one query sees all four.
        let all = try client.execute("query-vfio-error-history")["return"]
        #expect(all?.elements.count == 4)
        #expect(all?.elements.filter { $0["kind"]?.string == "error" }.count == 3)
        #expect(all?.elements.filter { $0["kind"]?.string == "flag-set" }.map { $0["device"]?.string } == ["dev0"])
        let one = try client.execute("query-vfio-error-history", arguments: .object([
            "device": .string("dev0"), "limit": .integer(1)]))["return"]
        #expect(one?.elements.count == 1)
        #expect(one?[0]?["severity"]?.string == "fatal" && one?[0]?["errors"]?.elements.map(\.string) == ["DLP", "SDES"])
        #expect(["error", "flag-set"].contains(one?[0]?["kind"]?.string))
        #expect(one?[0]?["timestamp"]?["seconds"]?.integer ?? 0 > 1_700_000_000)
        let future = try client.execute("query-vfio-error-history", arguments: .object(["since": .integer(4_000_000_000)]))
        #expect(future["return"]?.elements.isEmpty == true)
        let bad = try client.execute("query-vfio-error-history", arguments: .object(["limit": .integer(0)]))
        #expect(bad["error"]?["desc"]?.string == "Parameter 'limit' expects a value between 1 and 10000")

        let text = try BrokerCLI.run(["history", "--state-dir", state], in: directory)
        #expect(text.exitCode == 0, "\(text.output)")
        let lines = text.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines.contains { $0.hasSuffix(" UTC vm1 dev0 (\(sysfs.host)): fatal error DLP, SDES from inject, action none, link flagged") },
                "\(lines)")
        let filtered = try BrokerCLI.run(["history", "--state-dir", state, "--device", "dev1", "--since", "1h"], in: directory)
        #expect(filtered.output.split(separator: "\n").count == 1 && filtered.output.contains("non-fatal error CmpltTO"))
        let none = try BrokerCLI.run(["history", "--state-dir", state, "--since", "2099-01-01"], in: directory)
        #expect(none.output == "No records.\n")
        let json = try BrokerCLI.run(["history", "--state-dir", state, "--vm", "vm1", "--json"], in: directory)
        let parsed = try JSON.parse(json.output)
        #expect(parsed.elements.filter { $0["kind"]?.string == "error" }.map { $0["device"]?.string } == ["dev0", "dev0", "dev1"])
        #expect(parsed[0]?["time"]?.string?.hasSuffix("Z") == true)

        let summary = try BrokerCLI.run(["summary", "--state-dir", state], in: directory)
        let rows = summary.output.split(separator: "\n").map(String.init)
        #expect(rows.first?.hasPrefix("VM   DEVICE  HOST          KIND      SEVERITY     RECORDS  SIGNALS  FIRST") == true, "\(rows)")
        #expect(rows.count == 5)
        #expect(rows.contains { $0.hasPrefix("vm1  dev0    \(sysfs.host)  error     fatal        1        1") }, "\(rows)")
        #expect(rows.contains { $0.hasPrefix("vm1  dev0    \(sysfs.host)  flag-set  fatal        1        1") }, "\(rows)")
        let badSince = try BrokerCLI.run(["summary", "--state-dir", state, "--since", "yesterday"], in: directory)
        #expect(badSince.exitCode != 0 && badSince.output.contains("--since takes 90s, 15m, 2h, 7d, 1w"))
        let missing = try BrokerCLI.run(["history", "--state-dir", directory.file("nowhere")], in: directory)
        #expect(missing.exitCode != 0 && missing.output.contains("No readable state database at"))
        #expect(access(directory.file("nowhere"), F_OK) != 0)
        broker.kill()
        _ = qemu
    }
}
